"""The Architecture form's edit rules, without a window: every edit is an exact before/after."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cnn_lab.app.models.architecture_form import (
    NO_LAYERS,
    ArchitectureForm,
    Edit,
    Problem,
    is_empty_block,
    validated,
)
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import CUSTOM, ArchitectureSpec

SHAPE = InputShape(channels=3, height=32, width=32, classes=10)


def apply(form: ArchitectureForm, edit: Edit | Problem | None) -> Edit:
    """Make an edit current, as the panel's undo stack does on redo."""
    assert isinstance(edit, Edit), edit
    form.show(edit.after, edit.select_after)
    return edit


def custom(*kinds: str) -> ArchitectureForm:
    form = ArchitectureForm(ArchitectureSpec(), SHAPE)
    apply(form, form.new_network())
    for kind in kinds:
        apply(form, form.add_layer(kind))
    return form


def kinds(form: ArchitectureForm) -> list[str]:
    return [layer.kind for layer in form.layers()]


def test_an_empty_network_is_a_draft_that_says_why() -> None:
    form = custom()
    assert form.spec.is_custom and form.layers() == ()
    assert form.valid is None and form.problem == NO_LAYERS
    assert validated(form.spec) == (None, NO_LAYERS)
    assert "Empty" in form.list_hint()


def test_a_layer_goes_after_the_selected_one_and_is_selected() -> None:
    form = custom("conv2d", "relu")
    assert kinds(form) == ["conv2d", "relu"] and form.selected == (1,)
    form.selected = (0,)
    edit = apply(form, form.add_layer("batchnorm"))
    assert edit.text == "Add BatchNorm"
    assert kinds(form) == ["conv2d", "batchnorm", "relu"] and form.selected == (1,)
    assert form.valid is not None and form.problem == ""


def test_an_unknown_kind_and_an_unchanged_value_are_no_edit() -> None:
    form = custom("conv2d")
    assert form.add_layer("no_such_layer") is None
    assert form.set_field("dropout", form.spec.dropout) is None
    assert form.edit_as_layers() is None  # already custom


def test_a_new_layer_goes_inside_a_selected_empty_block() -> None:
    form = custom("residual")
    assert is_empty_block(form.layers()[0]) and form.selected == (0,)
    apply(form, form.add_layer("relu"))
    assert form.selected == (0, 0)
    assert [inner.kind for inner in form.spec.layers[0].layers] == ["relu"]
    assert not is_empty_block(form.spec.layers[0])


def test_editing_a_preset_opens_it_as_custom_layers_in_one_step() -> None:
    form = ArchitectureForm(ArchitectureSpec(preset="small_cnn", width=0.5), SHAPE)
    form.show(form.spec, None)
    preset_layers = kinds(form)
    assert preset_layers and not form.spec.is_custom and "Editing one" in form.list_hint()
    edit = apply(form, form.delete_layer((0,)))
    assert edit.text == "Delete layer 1 (opens small_cnn)"
    assert edit.before.preset == "small_cnn" and edit.after.preset == CUSTOM
    assert kinds(form) == preset_layers[1:]
    assert (form.spec.width, form.spec.depth, form.spec.dropout) == (1.0, 1.0, 0.0)


def test_a_torchvision_preset_has_no_layers_so_a_layer_replaces_it() -> None:
    form = custom("conv2d")
    apply(form, form.choose_preset("resnet18"))
    assert form.layers() == () and "torchvision" in form.list_hint()
    assert form.edit_as_layers() is None
    edit = apply(form, form.add_layer("conv2d"))
    assert edit.text == "Add Conv2d (replaces resnet18)" and kinds(form) == ["conv2d"]


def test_a_preset_keeps_the_multipliers_it_supports_and_the_dropout() -> None:
    form = ArchitectureForm(ArchitectureSpec(preset="resnet9"), SHAPE)
    apply(form, form.set_field("width", 0.5))
    apply(form, form.set_field("dropout", 0.2))
    assert form.choose_preset("resnet9") is None  # already chosen
    edit = apply(form, form.choose_preset("resnet18"))
    assert edit.text == "Start from resnet18"
    assert (form.spec.preset, form.spec.width, form.spec.dropout) == ("resnet18", 0.5, 0.2)
    # From a custom network there is nothing to keep: the defaults.
    form = custom("conv2d", "linear")
    apply(form, form.choose_preset("resnet9"))
    assert (form.spec.width, form.spec.depth) == (1.0, 1.0)


def test_choosing_custom_opens_the_preset_or_starts_an_empty_network() -> None:
    form = ArchitectureForm(ArchitectureSpec(preset="small_cnn"), SHAPE)
    assert apply(form, form.choose_preset(CUSTOM)).text == "Edit as layers (opens small_cnn)"
    assert form.spec.is_custom and form.layers()
    form = ArchitectureForm(ArchitectureSpec(preset="resnet18"), SHAPE)
    assert apply(form, form.choose_preset(CUSTOM)).text == "New empty network"
    assert form.layers() == ()


def test_clearing_the_weights_unfreezes_the_backbone() -> None:
    form = ArchitectureForm(ArchitectureSpec(preset="resnet18"), SHAPE)
    apply(form, form.set_pretrained("weights.pt"))
    apply(form, form.set_field("freeze_backbone", True))
    edit = apply(form, form.set_pretrained(""))
    assert edit.text == "Clear weights"
    assert form.spec.pretrained == "" and form.spec.freeze_backbone is False


def test_edits_of_one_field_merge_and_an_edit_back_is_obsolete() -> None:
    form = custom("conv2d")
    start = form.spec
    first = form.set_param("out_channels", 64)
    assert first is not None and first.merge_key == ("param", (0,), "out_channels")
    apply(form, first)
    second = form.set_param("out_channels", 16)
    assert second is not None and first.merge(second)
    assert first.before == start and first.after.layers[0].params["out_channels"] == 16
    assert not first.obsolete
    apply(form, second)
    back = form.set_param("out_channels", start.layers[0].params["out_channels"])
    assert back is not None and first.merge(back) and first.obsolete
    other = form.set_param("kernel_size", 5)
    assert other is not None and not first.merge(other)
    unkeyed = form.delete_layer((0,))
    assert unkeyed is not None and not unkeyed.merge(unkeyed)


def test_a_parameter_needs_a_selected_layer() -> None:
    form = custom("conv2d")
    form.selected = None
    assert form.set_param("out_channels", 8) is None
    assert form.selected_layer() is None
    form.selected = (0,)
    kind, params, heading = form.selected_layer()  # type: ignore[misc]
    assert kind is not None and kind.kind == "conv2d"
    assert heading == "Layer 1: Conv2d" and "out_channels" in params


def test_moving_and_duplicating_select_the_moved_layer() -> None:
    form = custom("conv2d", "relu", "batchnorm")
    apply(form, form.move_layer((2,), (), 1))
    assert kinds(form) == ["conv2d", "batchnorm", "relu"] and form.selected == (1,)
    assert form.move_layer((1,), (), 1) is None  # onto itself: no move
    edit = apply(form, form.duplicate_layer((0,)))
    assert edit.text == "Duplicate 1" and kinds(form)[:2] == ["conv2d", "conv2d"]


def test_showing_a_spec_drops_a_selection_it_does_not_have() -> None:
    form = custom("conv2d", "relu")
    form.show(form.spec, (5,))
    assert form.selected is None
    form.show(form.spec, (1,))
    assert form.selected == (1,)


def test_a_block_opens_into_its_layers_once_its_input_is_known() -> None:
    form = custom("basic_block", "basic_block")
    edit = apply(form, form.open_block((0,)))  # the first layer sees the input
    assert edit.text == "Open Basic block"
    assert kinds(form) == ["residual", "basic_block"] and len(form.spec.layers[0].layers) == 5
    # The second block's input comes from the summary, which the form does not have yet.
    problem = form.open_block((1,))
    assert isinstance(problem, Problem) and problem.path is None
    assert "can be opened once the layers before it build" in problem.message
    assert form.open_block((0,)) is None  # a residual has nothing to open into
    rows = [SimpleNamespace(output_shape=(64, 32, 32), params=n) for n in (1, 2)]
    assert form.set_summary(SimpleNamespace(layers=rows), form.valid)  # type: ignore[arg-type]
    assert form.input_of((1,)) == (64, 32, 32) and form.input_of((1, 2)) is None
    apply(form, form.open_block((1,)))
    assert kinds(form) == ["residual", "residual"]


def test_a_summary_counts_only_for_the_spec_it_was_made_for() -> None:
    form = custom("conv2d", "linear")
    rows = [
        SimpleNamespace(output_shape=(32, 32, 32), params=896),
        SimpleNamespace(output_shape=(10,), params=330),
    ]
    stale = custom("conv2d").spec
    assert not form.set_summary(SimpleNamespace(layers=rows), stale)
    assert form.summary_rows() == ()
    assert form.set_summary(SimpleNamespace(layers=rows), form.valid)  # type: ignore[arg-type]
    assert form.layer_stats() == [("[32, 32, 32]", "896"), ("[10]", "330")]
    apply(form, form.add_layer("relu"))  # a new spec: the old summary no longer describes it
    assert form.summary_rows() == () and form.layer_stats() is None


@pytest.mark.parametrize("known", [True, False])
def test_the_input_line_says_where_the_shape_comes_from(known: bool) -> None:
    text = ArchitectureForm(ArchitectureSpec(), SHAPE).input_text(known, 128, "adamw")
    assert text.startswith("Sized for 3×32×32, 10 classes")
    assert ("from the imported dataset" in text) is known
    assert text.endswith("Memory estimated at batch 128 with adamw.")
