"""A run's network is named for what trained: timm's model and the module's class and file,
not the "timm"/"module" markers, in the store (runs list, the Runs panel) and in reports."""

from __future__ import annotations

from pathlib import Path

from cnn_lab.engine.jobs.job import create_run
from cnn_lab.engine.report.architecture import unmeasured
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.specs.architecture import ModuleSource, code_sha256
from cnn_lab.engine.specs.network_name import network_name
from cnn_lab.engine.store import RunStore

CODE = "import torch\nclass Net(torch.nn.Module):\n    pass\n"
MODULE = ModuleSource(
    path="/home/ana/project/nets.py", class_name="Net", code=CODE, sha256=code_sha256(CODE)
)


def test_each_source_of_network_has_a_name_that_says_which() -> None:
    assert network_name(ArchitectureSpec(preset="resnet18")) == "resnet18"
    assert network_name(ArchitectureSpec(preset="timm", timm_model="resnet18")) == "timm:resnet18"
    tagged = ArchitectureSpec(preset="timm", timm_model="convnext_tiny.fb_in1k")
    assert network_name(tagged) == "timm:convnext_tiny.fb_in1k"
    assert network_name(ArchitectureSpec(preset="module", module=MODULE)) == "Net (nets.py)"


def test_the_store_and_the_report_record_the_name(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "runs.db")
    try:
        for architecture, name in [
            ({"preset": "timm", "timm_model": "resnet18"}, "timm:resnet18"),
            ({"preset": "module", "module": MODULE.model_dump()}, "Net (nets.py)"),
            ({"preset": "small_cnn"}, "small_cnn"),
        ]:
            spec = RunSpec.from_dict({"architecture": architecture})
            assert store.get_run(create_run(store, spec)).model == name
            assert unmeasured(spec).facts[0].value == name
    finally:
        store.close()
