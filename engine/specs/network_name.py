"""What a run's network is called wherever it is listed: the Runs panel, ``runs list``, reports.

One function, so every list names a network the same way: a preset by its name
(``resnet18``, ``custom``), a timm model as ``timm:<model>`` and the person's own module as
``<Class> (<file>)``; "timm" and "module" alone would say nothing about which network trained.
"""

from __future__ import annotations

from pathlib import PurePath

from cnn_lab.engine.specs.architecture import ArchitectureSpec


def network_name(spec: ArchitectureSpec) -> str:
    """``resnet18``, ``timm:convnext_tiny.fb_in1k`` or ``Net (nets.py)``."""
    if spec.module is not None:
        return f"{spec.module.class_name} ({PurePath(spec.module.path).name})"
    if spec.timm_model:
        return f"timm:{spec.timm_model}"
    return spec.preset
