"""Edits of a layer stack at a path, as pure functions on frozen LayerSpecs.

A path is a tuple of 0-based indices: (2,) is the third top-level layer, (2, 1) the second
inner layer of that block. The Architecture panel's list, buttons and drops all edit a
network through these, and each returns new layers (specs are frozen) plus, where it helps,
the path of the layer to select afterwards. No torch and no Qt: the GUI imports this.
"""

from __future__ import annotations

from cnn_lab.engine.specs.layers import LayerSpec

Path = tuple[int, ...]
Layers = tuple[LayerSpec, ...]


def layer_at(layers: Layers, path: Path) -> LayerSpec:
    layer = layers[path[0]]
    return layer_at(layer.layers, path[1:]) if len(path) > 1 else layer


def siblings_at(layers: Layers, parent: Path) -> Layers:
    """The layers of the block at ``parent`` (the top level for ``()``)."""
    return layer_at(layers, parent).layers if parent else layers


def _with_siblings(layers: Layers, parent: Path, new: Layers) -> Layers:
    if not parent:
        return new
    head, rest = parent[0], parent[1:]
    block = layers[head]
    block = block.model_copy(update={"layers": _with_siblings(block.layers, rest, new)})
    return (*layers[:head], block, *layers[head + 1 :])


def replace_at(layers: Layers, path: Path, new: Layers) -> Layers:
    """Replace the layer at ``path`` with ``new`` (none, one, or several layers)."""
    parent, i = path[:-1], path[-1]
    row = siblings_at(layers, parent)
    return _with_siblings(layers, parent, (*row[:i], *new, *row[i + 1 :]))


def insert_at(layers: Layers, parent: Path, index: int, new: LayerSpec) -> Layers:
    row = siblings_at(layers, parent)
    index = max(0, min(index, len(row)))
    return _with_siblings(layers, parent, (*row[:index], new, *row[index:]))


def move_to(layers: Layers, source: Path, parent: Path, index: int) -> tuple[Layers, Path] | None:
    """Move the layer at ``source`` to ``index`` under ``parent``; None if that is no move.

    ``index`` counts positions before the layer is taken out, as a drop indicator shows them.
    A block cannot move into itself.
    """
    if parent[: len(source)] == source:
        return None
    moved = layer_at(layers, source)
    if source[:-1] == parent and index > source[-1]:
        index -= 1  # taking the layer out shifts the later ones up
    if source[:-1] == parent and index == source[-1]:
        return None
    without = replace_at(layers, source, ())
    depth = len(source) - 1
    if len(parent) > depth and parent[:depth] == source[:-1] and parent[depth] > source[-1]:
        # The target block sits after the moved layer among its siblings: it shifted up.
        parent = (*parent[:depth], parent[depth] - 1, *parent[depth + 1 :])
    index = max(0, min(index, len(siblings_at(without, parent))))
    return insert_at(without, parent, index, moved), (*parent, index)


def exists(layers: Layers, path: Path) -> bool:
    """Whether ``path`` names a layer of ``layers``."""
    if not path:
        return False
    for depth, i in enumerate(path):
        if not 0 <= i < len(layers):
            return False
        if depth < len(path) - 1:
            layers = layers[i].layers
    return True


def delete_at(layers: Layers, path: Path) -> tuple[Layers, Path | None]:
    """Remove the layer at ``path``; select its successor, else its predecessor or parent."""
    new = replace_at(layers, path, ())
    left = len(siblings_at(new, path[:-1]))
    if left:
        return new, (*path[:-1], min(path[-1], left - 1))
    return new, path[:-1] or None


def duplicate_at(layers: Layers, path: Path) -> tuple[Layers, Path]:
    """Insert a copy of the layer at ``path`` right after it, and select the copy."""
    layer = layer_at(layers, path)
    return replace_at(layers, path, (layer, layer)), (*path[:-1], path[-1] + 1)
