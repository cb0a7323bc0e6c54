"""Edits of a layer stack at a path: what the panel's buttons and drops do to a spec."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as hs

from cnn_lab.engine.specs import LayerSpec
from cnn_lab.engine.specs.layer_edits import (
    delete_at,
    duplicate_at,
    exists,
    insert_at,
    layer_at,
    move_to,
    replace_at,
)


def named(name: str, *inner: LayerSpec) -> LayerSpec:
    # The kind is irrelevant here; a param tells the layers apart.
    return LayerSpec(kind="residual" if inner else "relu", params={"n": name}, layers=inner)


def names(layers: tuple[LayerSpec, ...]) -> list:
    return [
        [layer.params["n"], names(layer.layers)] if layer.layers else layer.params["n"]
        for layer in layers
    ]


NET = (named("a"), named("b"), named("block", named("x"), named("y")), named("c"))


def test_move_within_a_level_counts_positions_before_the_layer_is_taken_out() -> None:
    moved, where = move_to(NET, (0,), (), 3)
    assert names(moved) == ["b", ["block", ["x", "y"]], "a", "c"]
    assert where == (2,)
    assert move_to(NET, (1,), (), 1) is None and move_to(NET, (1,), (), 2) is None


def test_move_into_and_out_of_a_block() -> None:
    into, where = move_to(NET, (0,), (2,), 1)  # the block shifts up when "a" leaves
    assert names(into) == ["b", ["block", ["x", "a", "y"]], "c"]
    assert where == (1, 1)
    out, where = move_to(NET, (2, 0), (), 4)
    assert names(out) == ["a", "b", ["block", ["y"]], "c", "x"]
    assert where == (4,)


def test_a_block_cannot_move_into_itself() -> None:
    assert move_to(NET, (2,), (2,), 0) is None


def test_delete_selects_the_successor_then_the_predecessor_then_the_parent() -> None:
    assert delete_at(NET, (1,))[1] == (1,)
    assert delete_at(NET, (3,))[1] == (2,)
    once, _ = delete_at(NET, (2, 0))
    assert delete_at(once, (2, 0)) == (
        (named("a"), named("b"), LayerSpec(kind="residual", params={"n": "block"}), named("c")),
        (2,),
    )


def test_insert_duplicate_replace_and_exists() -> None:
    assert names(insert_at(NET, (2,), 99, named("z")))[2] == ["block", ["x", "y", "z"]]
    doubled, where = duplicate_at(NET, (2, 1))
    assert names(doubled)[2] == ["block", ["x", "y", "y"]] and where == (2, 2)
    assert names(replace_at(NET, (0,), (named("p"), named("q"))))[:3] == ["p", "q", "b"]
    assert exists(NET, (2, 1)) and not exists(NET, (2, 2)) and not exists(NET, ())


@given(hs.integers(0, 3), hs.integers(0, 4))
def test_a_move_keeps_every_layer_once(source: int, index: int) -> None:
    result = move_to(NET, (source,), (), index)
    moved = result[0] if result else NET
    assert sorted(map(str, names(moved))) == sorted(map(str, names(NET)))
    if result:
        assert layer_at(moved, result[1]) == NET[source]
