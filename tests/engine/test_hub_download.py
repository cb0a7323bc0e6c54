"""Downloading one weights file into torch.hub's cache, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.models import hub_download
from cnn_lab.engine.models.hub_download import (
    DOWNLOADING,
    MIRROR_ENV,
    download_weights,
    hash_prefix_of,
    hub_checkpoints_dir,
)
from tests.local_http import FileServer, then_silence

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB: several chunks of torch.hub's 128 KiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
GOOD = f"tiny-{DIGEST[:8]}.pth"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """torch.hub's cache moved into tmp_path, and a folder of files to serve."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / GOOD).write_bytes(PAYLOAD)
    (served / "tiny-00000000.pth").write_bytes(PAYLOAD)  # its name promises another hash
    yield served


def _leftovers() -> list[str]:
    folder = hub_checkpoints_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_cache_is_torch_hubs_own_and_torch_home_moves_it(hub: Path, tmp_path: Path) -> None:
    import torch.hub

    assert hub_checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"
    assert hub_checkpoints_dir().is_relative_to(tmp_path / "torch")
    assert hash_prefix_of("resnet18-f37072fd.pth") == "f37072fd"
    assert hash_prefix_of("plain.pth") is None


def test_a_download_reports_progress_to_the_total_and_is_kept_verified(hub: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with FileServer(hub) as server:
        path = download_weights(f"{server.url}/{GOOD}", progress=lambda *a: seen.append(a))
    assert path == hub_checkpoints_dir() / GOOD
    assert path.read_bytes() == PAYLOAD
    assert {stage for stage, _, _ in seen} == {DOWNLOADING}
    assert seen[-1] == (DOWNLOADING, len(PAYLOAD), len(PAYLOAD))
    assert len(seen) > 2  # several chunks, each reported
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert _leftovers() == [GOOD]  # no .partial file beside it


def test_a_cancel_midway_raises_cancelled_and_keeps_nothing(hub: Path) -> None:
    chunks = []

    def progress(stage: str, done: int, total: int) -> None:
        chunks.append(done)

    with FileServer(hub) as server, pytest.raises(Cancelled):
        download_weights(
            f"{server.url}/{GOOD}", progress=progress, should_stop=lambda: len(chunks) >= 2
        )
    assert 0 < max(chunks) < len(PAYLOAD)
    assert _leftovers() == []


def test_a_corrupt_file_is_refused_by_its_hash_and_nothing_kept(hub: Path) -> None:
    with FileServer(hub) as server, pytest.raises(UserError) as caught:
        download_weights(f"{server.url}/tiny-00000000.pth")
    assert "corrupt" in caught.value.message
    assert "00000000" in caught.value.message
    assert "pick a weights file" in (caught.value.hint or "")
    assert _leftovers() == []


def test_a_server_that_stops_answering_times_out_in_a_sentence(hub: Path) -> None:
    release = threading.Event()
    try:
        with FileServer(hub, then_silence(release)) as server, pytest.raises(UserError) as caught:
            download_weights(f"{server.url}/{GOOD}", timeout_s=0.5)
    finally:
        release.set()
    assert "did not answer for 0.5 s" in caught.value.message
    assert "\n" not in str(caught.value)
    assert "pick a weights file" in (caught.value.hint or "")
    assert _leftovers() == []


def test_an_http_error_is_a_sentence(hub: Path) -> None:
    with FileServer(hub) as server, pytest.raises(UserError) as caught:
        download_weights(f"{server.url}/missing-abcdef12.pth")
    assert "HTTP 404" in caught.value.message
    assert _leftovers() == []


def test_offline_is_a_sentence_offering_the_file_picker(hub: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError) as caught:
        download_weights(f"http://127.0.0.1:{port}/{GOOD}", what="resnet18's IMAGENET1K_V1")
    message = caught.value.message
    assert message.startswith("resnet18's IMAGENET1K_V1 could not be downloaded")
    assert "offline" in message
    assert "pick a weights file you already have" in (caught.value.hint or "")
    assert _leftovers() == []


def test_a_cached_file_is_used_with_no_network_at_all(
    hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = hub_checkpoints_dir()
    folder.mkdir(parents=True)
    (folder / GOOD).write_bytes(PAYLOAD)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(hub_download.urllib.request, "urlopen", no_network)
    path = download_weights("https://download.example.invalid/models/" + GOOD)
    assert path == folder / GOOD


def test_the_mirror_replaces_scheme_host_and_folder(
    hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FileServer(hub) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url + "/")
        assert hub_download.mirrored("https://x.org/a/b/" + GOOD) == f"{server.url}/{GOOD}"
        path = download_weights("https://download.example.invalid/models/" + GOOD)
    assert path.read_bytes() == PAYLOAD
