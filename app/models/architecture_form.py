"""The Architecture panel's form: the current spec, the selected layer and the edit rules.

Every edit (a palette double-click, a drop, a button, a property, a preset choice, a loaded
file) becomes one ``Edit``: the spec and the selected layer before and after it, so undo is
always exact. The form only computes edits; the panel pushes them on its undo stack and shows
whatever spec the stack makes current through ``show``. A spec that does not validate (a
custom net with no layers yet) stays the form's draft with a sentence saying why; only valid
specs reach AppState. No Qt here: the rules are tested without a window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_core import ValidationError

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.models.layers.registry import LayerKind, find_layer_kind
from cnn_lab.engine.models.registry import Preset, get_preset, preset_layers
from cnn_lab.engine.specs import CUSTOM, ArchitectureSpec, LayerSpec, explain
from cnn_lab.engine.specs.architecture import MODULE, TIMM, ModuleSource
from cnn_lab.engine.specs.layer_edits import (
    Layers,
    Path,
    delete_at,
    duplicate_at,
    exists,
    insert_at,
    layer_at,
    move_to,
    replace_at,
    siblings_at,
)
from cnn_lab.engine.util.formatting import format_count, format_shape

Change = Callable[[Layers], tuple[Layers, Path | None] | None]
"""An edit of the layers: the new layers and the path to select, or None for no change."""
NO_LAYERS = "The network has no layers yet: double-click a layer in the palette or drag one here."
PRESET_DEFAULTS = {"width": 1.0, "depth": 1.0, "dropout": 0.0}
"""A custom network has no width or depth multiplier of its own: opening a preset resets them."""
OTHER_NETWORK = {"timm_model": "", "module": None, "weights": ""}
"""Another network drops the last one's timm model, module and published weights (whose names
belong to that network); a weights file stays, and load_pretrained says if it does not fit."""


def place(path: Path) -> str:
    """A layer's position as the list numbers it: 1-based, dotted inside blocks ("2.3")."""
    return ".".join(str(i + 1) for i in path)


@dataclass
class Edit:
    """One undoable edit: the spec (and the selected layer) before and after it."""

    text: str
    before: ArchitectureSpec
    after: ArchitectureSpec
    select_before: Path | None
    select_after: Path | None
    merge_key: tuple | None = None
    """Edits of one field share a key, so spinning one box is one undo step."""

    def merge(self, other: Edit) -> bool:
        """Take ``other``'s outcome when it edits the same field; False when it does not."""
        if self.merge_key is None or other.merge_key != self.merge_key:
            return False
        self.after, self.select_after = other.after, other.select_after
        return True

    @property
    def obsolete(self) -> bool:
        """Whether the edit (after merging) changes nothing, so undo can drop it."""
        return self.after == self.before


@dataclass(frozen=True)
class Problem:
    """A sentence for the banner, and the layer it is about (None: the whole network)."""

    message: str
    path: Path | None = None


def validated(spec: ArchitectureSpec) -> tuple[ArchitectureSpec | None, str]:
    """The spec, validated, or None and a sentence saying why it is not valid."""
    if spec.is_custom and not spec.layers:
        return None, NO_LAYERS
    try:
        return ArchitectureSpec.model_validate(spec.model_dump()), ""
    except ValidationError as exc:
        return None, explain(exc, what="architecture")


def find_preset(name: str) -> Preset | None:
    """The preset called ``name``, or None (a spec from a newer version may name another)."""
    try:
        return get_preset(name)
    except UserError:
        return None


def is_empty_block(layer: LayerSpec) -> bool:
    """Whether ``layer`` is a block with nothing in it yet, so a new layer goes inside it."""
    kind = find_layer_kind(layer.kind)
    return kind is not None and kind.container and not layer.layers


class ArchitectureForm:
    """The spec being edited, the selected layer, the last summary, and the edits on them.

    The edit methods return an ``Edit`` (None when nothing would change) and change nothing
    themselves: only ``show`` makes a spec current, as the undo stack's redo and undo do.
    """

    def __init__(self, spec: ArchitectureSpec, input_shape: InputShape) -> None:
        self.spec = spec
        self.valid: ArchitectureSpec | None = spec
        self.problem = ""
        self.selected: Path | None = None
        self.input_shape = input_shape
        self.summary: Any = None  # the last good ModelSummary, and the spec it is for
        self.summary_spec: ArchitectureSpec | None = None

    # ------------------------------------------------------------------ state

    def show(self, spec: ArchitectureSpec, select: Path | None) -> None:
        """Make ``spec`` current; ``select`` is kept only if it names one of its layers."""
        self.spec = spec
        self.selected = select if select is not None and exists(self.layers(), select) else None
        self.valid, self.problem = validated(spec)

    def layers(self) -> Layers:
        """The layers the list shows: the custom net's, or an editable preset's."""
        if self.spec.is_custom:
            return self.spec.layers
        try:
            return preset_layers(self.spec, self.input_shape) or ()
        except UserError:
            return ()

    def preset(self) -> Preset | None:
        """The preset the spec starts from; None for a custom network."""
        return None if self.spec.is_custom else find_preset(self.spec.preset)

    def set_summary(self, summary: Any, spec: ArchitectureSpec) -> bool:
        """Keep ``summary`` if it is for the current valid spec; False for a stale one."""
        if spec != self.valid:
            return False
        self.summary, self.summary_spec = summary, spec
        return True

    def summary_rows(self) -> tuple[Any, ...]:
        """The last summary's rows if it is for the current spec, else none."""
        fresh = self.summary is not None and self.summary_spec == self.valid
        return tuple(self.summary.layers) if fresh else ()

    def input_of(self, path: Path) -> tuple[int, ...] | None:
        """The shape a layer receives, from the last summary; None when it is not known."""
        if any(path[1:]):
            return None  # inside a block after its first layer: the summary has no row
        if path[0] == 0:
            s = self.input_shape
            return (s.channels, s.height, s.width)
        rows = self.summary_rows()
        return tuple(rows[path[0] - 1].output_shape) if len(rows) >= path[0] else None

    # ------------------------------------------------------------------ edits

    def edit(
        self, after: ArchitectureSpec, text: str, select: Path | None = None,
        merge_key: tuple | None = None,
    ) -> Edit | None:  # fmt: skip
        """The edit to ``after`` (validated, so defaults are filled), or None if no change."""
        after = validated(after)[0] or after
        if after == self.spec:
            return None
        return Edit(text, self.spec, after, self.selected, select, merge_key)

    def set_field(self, name: str, value: Any) -> Edit | None:
        update = self.spec.model_copy(update={name: value})
        return self.edit(update, f"Set {name}", self.selected, (name,))

    def edit_layers(self, change: Change, text: str, merge_key: tuple | None = None) -> Edit | None:
        """Apply ``change`` to the layers; a preset is first opened as layers (one step)."""
        result = change(self.layers())
        if result is None:
            return None
        layers, select = result
        if not self.spec.is_custom:  # torchvision's have no layers: a new network replaces it
            how = "opens" if self.layers() else "replaces"
            text += f" ({how} {self.spec.preset})"
        custom = {"preset": CUSTOM, "layers": layers, **PRESET_DEFAULTS}
        return self.edit(self.other_network(custom), text, select, merge_key)

    def add_layer(self, kind: str) -> Edit | None:
        """Add ``kind`` after the selected layer (into it, if it is an empty block)."""
        path = self.selected
        parent, index = (path[:-1], path[-1] + 1) if path else ((), len(self.layers()))
        if path and is_empty_block(layer_at(self.layers(), path)):
            parent, index = path, 0
        return self.insert_layer(kind, parent, index)

    def insert_layer(self, kind: str, parent: Path, index: int) -> Edit | None:
        found = find_layer_kind(kind)
        if found is None:
            return None
        parent = tuple(parent)
        new = LayerSpec(kind=kind, params=found.default_params())
        index = min(index, len(siblings_at(self.layers(), parent)))
        return self.edit_layers(
            lambda ls: (insert_at(ls, parent, index, new), (*parent, index)), f"Add {found.title}"
        )

    def move_layer(self, source: Path, parent: Path, index: int) -> Edit | None:
        source, parent = tuple(source), tuple(parent)
        return self.edit_layers(lambda ls: move_to(ls, source, parent, index), "Move layer")

    def delete_layer(self, path: Path) -> Edit | None:
        return self.edit_layers(lambda ls: delete_at(ls, path), f"Delete layer {place(path)}")

    def duplicate_layer(self, path: Path) -> Edit | None:
        return self.edit_layers(lambda ls: duplicate_at(ls, path), f"Duplicate {place(path)}")

    def set_param(self, name: str, value: Any) -> Edit | None:
        """Set a parameter of the selected layer; edits of one field merge into one step."""
        path = self.selected
        if path is None:
            return None

        def change(layers: Layers) -> tuple[Layers, Path]:
            layer = layer_at(layers, path).with_params(**{name: value})
            return replace_at(layers, path, (layer,)), path

        return self.edit_layers(change, f"Set {name}", ("param", path, name))

    def open_block(self, path: Path) -> Edit | Problem | None:
        """Replace a block with the plain layers it is made of (one residual for ResNet's).

        Expanding needs the shape the block receives, so a block after a layer that does not
        build yet cannot open: that, and a block whose own params are wrong, is a Problem.
        """
        layer = layer_at(self.layers(), path)
        kind = find_layer_kind(layer.kind)
        if kind is None or kind.expand is None:
            return None
        shape = self.input_of(path)
        if shape is None:
            message = f"Layer {place(path)} can be opened once the layers before it build."
            return Problem(f"{message} Fix the error first.")
        try:
            inner = kind.expand(kind.parse(layer.params), shape)
        except Exception as exc:  # a LayerProblem about its params, as a sentence
            return Problem(f"Layer {place(path)} cannot be opened: {exc}.", path)
        return self.edit_layers(
            lambda ls: (replace_at(ls, path, inner), path), f"Open {kind.title}"
        )

    def edit_as_layers(self) -> Edit | None:
        """Turn an editable preset into the custom layers it is made of."""
        if self.spec.is_custom or not self.layers():
            return None
        return self.edit_layers(lambda ls: (ls, self.selected), "Edit as layers")

    def new_network(self) -> Edit | None:
        empty = {"preset": CUSTOM, "layers": (), **PRESET_DEFAULTS}
        return self.edit(self.other_network(empty), "New empty network")

    def choose_preset(self, name: str) -> Edit | None:
        """Start from preset ``name``, keeping the multipliers it supports and the dropout.

        Choosing "custom" opens the current preset as layers when it has them, else starts an
        empty network.
        """
        if name == self.spec.preset:
            return None
        if name == CUSTOM:
            return self.edit_as_layers() if self.layers() else self.new_network()
        preset = get_preset(name)
        old = self.spec if self.spec.preset not in (CUSTOM, TIMM, MODULE) else ArchitectureSpec()
        changes = {
            "preset": name,
            "layers": (),
            "width": old.width if preset.supports_width else 1.0,
            "depth": old.depth if preset.supports_depth else 1.0,
            "dropout": old.dropout,
        }
        return self.edit(self.other_network(changes), f"Start from {name}")

    def choose_timm(self, name: str) -> Edit | None:
        """Start from timm's model ``name`` (built by timm; no width or depth of its own)."""
        changes = {"preset": TIMM, "timm_model": name, "layers": (), "width": 1.0, "depth": 1.0}
        return self.edit(self.other_network(changes), f"Start from timm's {name}")

    def choose_module(self, source: ModuleSource) -> Edit | None:
        """Start from the person's own module class (read, not run: the summary builds it)."""
        changes = {**PRESET_DEFAULTS, "preset": MODULE, "layers": (), "module": source}
        return self.edit(self.other_network(changes), f"Start from {source.class_name}")

    def other_network(self, changes: dict[str, Any]) -> ArchitectureSpec:
        """The spec with ``changes`` on another network: OTHER_NETWORK's fields reset, and
        the backbone unfrozen when no weights remain to keep."""
        after = self.spec.model_copy(update={**OTHER_NETWORK, **changes})
        if after.freeze_backbone and not after.starts_pretrained:
            after = after.model_copy(update={"freeze_backbone": False})
        return after

    def set_pretrained(self, path: str) -> Edit | None:
        """Start from a weights file (instead of published weights); "" clears both and
        unfreezes the backbone."""
        changes: dict[str, Any] = {"pretrained": path, "weights": ""}
        if not path:
            changes["freeze_backbone"] = False
        text = "Set weights" if path else "Clear weights"
        return self.edit(self.spec.model_copy(update=changes), text)

    def set_weights(self, name: str) -> Edit | None:
        """Start from the network's published weights ``name`` (a weights file is dropped)."""
        if not name:
            return self.set_pretrained("")
        changes = {"weights": name, "pretrained": ""}
        return self.edit(self.spec.model_copy(update=changes), f"Start from {name} weights")

    # ------------------------------------------------------------------ texts

    def input_text(self, input_known: bool, batch: int, optimizer: str) -> str:
        """What the network is sized for, and what the memory estimate assumes."""
        s = self.input_shape
        origin = (
            "from the imported dataset" if input_known else "default until a dataset is imported"
        )
        return (
            f"Sized for {s.channels}×{s.height}×{s.width}, {s.classes} classes — {origin}. "
            f"Memory estimated at batch {batch} with {optimizer}."
        )

    def list_hint(self) -> str:
        """The line above the layer list: what the list holds and what editing it does."""
        name, layers = self.spec.preset, self.layers()
        if self.spec.is_custom:
            return "" if layers else "Empty: double-click a layer in the palette or drag it here."
        if layers:
            return (
                f"The layers of {name} for this input. Editing one turns it into a custom "
                "network (undo turns it back)."
            )
        if name == TIMM:
            return f"timm's {self.spec.timm_model} is built by timm: no editable layers."
        if name == MODULE and self.spec.module is not None:
            return f"{self.spec.module.class_name} is built by your own code: no editable layers."
        return f"{name} is built by torchvision code: no editable layers; see its units below."

    def selected_layer(self) -> tuple[LayerKind | None, dict[str, Any], str] | None:
        """The selected layer's kind, params and the editor's heading; None if none is."""
        if self.selected is None:
            return None
        layer = layer_at(self.layers(), self.selected)
        kind = find_layer_kind(layer.kind)
        heading = f"Layer {place(self.selected)}: {kind.title if kind else layer.kind}"
        return kind, dict(layer.params), heading

    def layer_stats(self) -> list[tuple[str, str]] | None:
        """Each layer's output shape and parameter count for the list, from the summary;
        None when the summary's rows are not the list's layers one for one."""
        rows = self.summary_rows()
        if len(rows) != len(self.layers()):
            return None
        return [(format_shape(r.output_shape), format_count(r.params)) for r in rows]
