"""Data-parallel ranks and a cold weights cache: rank 0 downloads the published weights in the
job, and the other ranks wait for it (one all-reduce) instead of building without the file;
a failed download ends every rank, with rank 0's sentence as the run's reason.

timm's test network is used because the spawned rank reads the real catalogue (a test's
monkeypatch does not reach it), and a Hugging Face file carries no hash in its name."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models import published_weights as pw
from cnn_lab.engine.models.hub_download import MIRROR_ENV
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st
from tests.engine.test_timm_weights import served  # noqa: F401 (a fixture)
from tests.local_http import FileServer, after

pytest.importorskip("timm")


def _spec() -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 24, "image_size": 32},
            "architecture": {"preset": "timm", "timm_model": "test_resnet", "weights": "default"},
            "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "world_size": 2},
        }
    )


@pytest.mark.slow
def test_the_other_rank_waits_for_rank_0s_download(
    served: tuple[Path, dict],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
) -> None:
    folder, _ = served
    assert pw.cached_weights_path(_spec().architecture) is None
    # Each file comes 5 s late: long enough that a rank that did not wait would build before
    # the file is there (the test's point, not a timing assertion).
    with FileServer(folder, after(5.0)) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)  # the spawned rank inherits it
        record = run_job(_spec(), db_path, sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record.reason
    assert "weights: Loaded 90 of the network's 92 tensors" in record.summary["pretrained"]


@pytest.mark.slow
def test_a_failed_download_ends_both_ranks_with_its_sentence(
    served: tuple[Path, dict],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")  # nobody listens there
    record = run_job(_spec(), db_path, sample_system=False)
    assert record is not None and record.status == st.FAILED
    assert "could not be downloaded" in record.reason
