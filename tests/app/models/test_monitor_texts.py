"""What the Monitor's header and step-time caption say, without a window."""

from __future__ import annotations

from types import SimpleNamespace

from cnn_lab.app.models.monitor_texts import (
    count_text,
    done_text,
    progress_text,
    reason_text,
    start_text,
    stored_device_text,
    timing_caption,
)
from cnn_lab.engine.util.durations import format_duration


def test_parameters_read_as_a_person_says_them() -> None:
    assert [count_text(n) for n in (999, 850_000, 11_234_567)] == ["999", "850 k", "11.2 M"]


def test_the_start_line_names_device_batch_data_and_size() -> None:
    event = SimpleNamespace(
        device="cuda:0", batch_size=256, train_images=50_000, val_images=10_000,
        classes=tuple("abcdefghij"), params=11_200_000, data_on_device=True,
    )  # fmt: skip
    assert start_text(event) == (
        "cuda:0 · batch 256 · 50,000 train / 10,000 validation images · 10 classes · "
        "11.2 M parameters · data on the device"
    )
    event.batch_size, event.data_on_device = 0, False
    assert start_text(event) == (
        "cuda:0 · 50,000 train / 10,000 validation images · 10 classes · 11.2 M parameters"
    )


def test_a_stored_run_names_itself_and_what_it_recorded() -> None:
    record = SimpleNamespace(
        name="baseline", device="cpu", summary={"device": "cuda:1", "params": 2_000_000}
    )
    assert stored_device_text(record) == "baseline · cuda:1 · 2.0 M parameters"  # type: ignore[arg-type]
    bare = SimpleNamespace(name="", device="", summary={"params": "unknown"})
    assert stored_device_text(bare) == ""  # type: ignore[arg-type]


def test_progress_knows_the_epochs_once_the_run_started() -> None:
    step = SimpleNamespace(epoch=3, progress=0.275, eta_s=90.0)
    eta = format_duration(90.0, "spoken")
    assert progress_text(step, 10) == f"epoch 3/10 · 28% · ETA {eta}"
    assert progress_text(step, None) == f"epoch 3 · 28% · ETA {eta}"


def test_how_far_an_ended_run_got() -> None:
    assert done_text(1200.0, 4.0) == "4 epochs · 1,200 steps"
    assert done_text(35.0, None) == "35 steps"


def test_the_step_caption_adds_throughput_and_window_only_when_known() -> None:
    assert timing_caption("20.0 ms", 20.0, 64, 400) == (
        "20.0 ms per step · 3,200 images/s · mean of the last 400 steps"
    )
    assert timing_caption("20.0 ms", 20.0, 0, 0) == "20.0 ms per step"  # a stored run
    assert timing_caption("0.00 ms", 0.0, 64, 0) == "0.00 ms per step"


def test_the_reason_and_hint_each_take_a_line() -> None:
    assert reason_text("Out of memory.", "Halve the batch.") == "Out of memory.\nHalve the batch."
    assert reason_text("", "") == "" and reason_text("Stopped.", "") == "Stopped."
