"""GPU faults: out of memory and a device-side assert fail the run with a sentence, and keep
what it stored.

What happens on the CPU side of such a fault (the loop's handling, the job's record, the
sentence) runs everywhere: the tests raise the exception CUDA would raise, where it would
raise it, inside a real in-process run. The real faults need a GPU and are skipped without
CUDA: memory really filled up to the last block, and a cross-entropy kernel really given
labels past the network's classes, in a spawned job process so the broken CUDA context dies
with it while this process trains on.

No Qt here: the GPU machines that run these tests have no PySide6.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from cnn_lab.engine.jobs.job import child_main, run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.artifact_kinds import WEIGHTS as WEIGHTS_KIND
from cnn_lab.engine.train import loop
from cnn_lab.engine.train.device_faults import DEVICE_FAULTS, CudaContextLost, device_fault
from cnn_lab.engine.train.events import RunFinished, RunStarted, StepEnd
from tests.engine.test_cuda_paths import child_events

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MIB = 1 << 20
CHILD_TIMEOUT_S = 180.0
ASSERT_TEXT = (
    "CUDA error: device-side assert triggered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call, so the "
    "stacktrace below might be incorrect.\n"
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n"
)
"""What PyTorch says after a device-side assert (torch 2.x), word for word."""
ACCELERATOR_ERROR: type[RuntimeError] = getattr(torch, "AcceleratorError", RuntimeError)
"""What newer PyTorch raises for CUDA errors (a RuntimeError); older ones raise RuntimeError."""


@pytest.fixture(autouse=True)
def _one_data_cache(one_data_cache: Path) -> None:
    """The tests share one prepared sample (tests/conftest.py's ``one_data_cache``)."""


@pytest.fixture
def one_cpu_thread() -> Iterator[None]:
    """Tiny CPU runs on one torch thread: on two shared cores torch's spinning worker
    threads made them several times slower. Their speed is not under test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_of(
    device: str, *, limit: int, batch: int, epochs: int, image_size: int | None = 16, **train: Any
) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": limit, "image_size": image_size},
            "architecture": {"preset": "small_cnn"},
            "train": {
                "epochs": epochs,
                "batch_size": batch,
                "device": device,
                "precision": "fp32",
                "channels_last": False,
                **train,
            },
        }
    )


def cpu_spec() -> RunSpec:
    """160 training images in batches of 8: 20 steps an epoch, in about a second."""
    return spec_of("cpu", limit=200, batch=8, epochs=2)


class FaultAfter:
    """Counts a run's steps from its events; ``due`` once ``steps_per_epoch + 2`` are done.

    Two steps into epoch 2: epoch 1's metrics, validation and checkpoint are stored by then,
    which is what the fault must not lose.
    """

    def __init__(self) -> None:
        self.at: float = math.inf
        self.steps = 0
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            self.at = event.steps_per_epoch + 2
        elif isinstance(event, StepEnd):
            self.steps += 1
        self.events.append(event)

    @property
    def due(self) -> bool:
        return self.steps >= self.at


def on_forward(monkeypatch: pytest.MonkeyPatch, hook: Any) -> None:
    """Run ``hook(module, inputs)`` before every training forward pass of the run's model.

    The loop also traces a meta-device twin of the model (a deep copy, hook included) and
    validates in eval mode: neither is a training step.
    """

    def guarded(module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        if module.training and inputs[0].device.type != "meta":
            hook(module, inputs)

    build_model = loop.build_model

    def build_and_watch(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = build_model(*args, **kwargs)
        model.register_forward_pre_hook(guarded)
        return model

    monkeypatch.setattr(loop, "build_model", build_and_watch)


def stored(db: Path, run_id: int) -> tuple[RunRecord, dict[str, int], list[float], set[str]]:
    """The run's record, metric counts, losses and artifact kinds as the store has them."""
    with RunStore.open(db) as store:
        record = store.get_run(run_id)
        keys = store.metric_keys(run_id)
        losses = [p.value for p in store.metrics(run_id, "train.loss")]
        kinds = {a["kind"] for a in store.artifacts(run_id)}
        assert store.integrity_ok()
    return record, keys, losses, kinds


def assert_kept_what_it_had(
    db: Path, record: RunRecord, fault: FaultAfter
) -> tuple[dict[str, int], set[str]]:
    """Every step before the fault, epoch 1's validation and its checkpoint are stored."""
    _, keys, losses, kinds = stored(db, record.id)
    assert keys["train.loss"] == fault.at == len(losses)
    assert all(math.isfinite(v) for v in losses), losses
    assert keys["val.accuracy"] == 1
    assert "checkpoint.last" in kinds, kinds
    finished = [e for e in fault.events if isinstance(e, RunFinished)]
    assert len(finished) == 1 and finished[0].status == st.FAILED
    assert finished[0].reason == record.reason
    return keys, kinds


# --------------------------------------------------------------------------- simulated


FITS = 2
"""The simulated device holds a batch of at most this many images once memory is short."""


@pytest.mark.usefixtures("one_cpu_thread")
def test_out_of_memory_fails_the_run_with_the_batch_that_fits_and_keeps_its_metrics(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA's out-of-memory error in epoch 2's forward pass, for any batch above FITS.

    The loop catches it where it can still measure: it probes halved batches (8, then 4,
    then 2, which fits) and says so, and the run ends failed with that advice.
    """
    fault = FaultAfter()

    def exhaust(module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        if fault.due and len(inputs[0]) > FITS:
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (raised by the test)"
            )

    on_forward(monkeypatch, exhaust)
    spec = cpu_spec()
    record = run_job(spec, db_path, emit=fault.emit, sample_system=False, flush_interval_s=0.2)

    assert record is not None and record.status == st.FAILED
    assert record.reason == f"The CPU ran out of memory at batch size {spec.train.batch_size}."
    assert record.hint == (
        f"Batch size {FITS} fits: retry with it (and grad accumulation "
        f"{spec.train.batch_size // FITS} to keep the effective batch)."
    )
    assert record.summary["suggested_batch_size"] == FITS
    _, kinds = assert_kept_what_it_had(db_path, record, fault)
    assert WEIGHTS_KIND not in kinds  # a failed run leaves no final weights


@pytest.mark.usefixtures("one_cpu_thread")
@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("forward", RuntimeError),  # reported at the kernel (CUDA_LAUNCH_BLOCKING=1)
        ("optimizer step", ACCELERATOR_ERROR),  # reported later, at a call that syncs
    ],
)
def test_a_device_side_assert_fails_the_run_with_a_sentence_and_keeps_its_metrics(
    where: str, error: type[RuntimeError], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = FaultAfter()

    def assert_on_device(*_: Any) -> None:
        if fault.due:
            raise error(ASSERT_TEXT)

    if where == "forward":
        on_forward(monkeypatch, assert_on_device)
    else:
        step = loop.optimizer_step

        def step_then_sync(*args: Any, **kwargs: Any) -> None:
            assert_on_device()
            step(*args, **kwargs)

        monkeypatch.setattr(loop, "optimizer_step", step_then_sync)
    record = run_job(cpu_spec(), db_path, emit=fault.emit, sample_system=False)

    assert record is not None and record.status == st.FAILED
    expected = CudaContextLost(DEVICE_FAULTS[0])
    assert (record.reason, record.hint) == (expected.message, expected.hint)
    reason, hint = record.reason or "", record.hint or ""
    assert "device-side assert" in reason and "CUDA context unusable" in reason, reason
    assert "label" in hint and "CUDA_LAUNCH_BLOCKING=1" in hint, hint
    assert "internal error" not in reason and "Traceback" not in reason + hint
    _, kinds = assert_kept_what_it_had(db_path, record, fault)
    assert WEIGHTS_KIND not in kinds  # nothing more runs on a lost context


@pytest.mark.parametrize("fault", DEVICE_FAULTS, ids=lambda f: f.marker)
def test_each_context_breaking_cuda_error_has_its_sentence(fault: Any) -> None:
    message = f"CUDA error: {fault.marker} (the rest of CUDA's message)"
    lost = device_fault(ACCELERATOR_ERROR(message))
    assert lost is not None and lost.fault is fault
    assert lost.message.endswith("CUDA context unusable, so the run stopped.")
    assert lost.hint and lost.hint.endswith("set.")


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("CUDA error: out of memory"),  # the loop measures what fits instead
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("CUDA error: invalid device ordinal"),  # the context is still fine
        ValueError("device-side assert"),  # not CUDA's error at all
    ],
    ids=["cuda oom", "oom error", "other cuda error", "not a runtime error"],
)
def test_other_errors_are_not_taken_for_a_lost_context(exc: BaseException) -> None:
    assert device_fault(exc) is None


# --------------------------------------------------------------------------- real GPU


GOOD_STEPS = 5
"""Steps the job trains correctly before its labels run past the network's classes."""


def child_with_too_few_outputs(*args: Any) -> None:
    """``child_main``, where after GOOD_STEPS steps the network scores only 2 classes.

    The loss then meets labels up to 9 on the GPU: the cross-entropy kernel's bounds check
    fires a real device-side assert, the usual way a person meets one. (Module level, so a
    spawned process can import it.)
    """
    forwards = 0

    def narrow(module: torch.nn.Module, inputs: tuple[Any, ...], out: torch.Tensor) -> Any:
        nonlocal forwards
        if not module.training or inputs[0].device.type == "meta":
            return None
        forwards += 1
        return out[:, :2] if forwards > GOOD_STEPS else None

    build_model = loop.build_model

    def build_and_narrow(*a: Any, **k: Any) -> torch.nn.Module:
        model = build_model(*a, **k)
        model.register_forward_hook(narrow)
        return model

    loop.build_model = build_and_narrow
    child_main(*args)


@needs_cuda
def test_a_real_device_side_assert_fails_the_job_and_this_process_trains_on(
    db_path: Path,
) -> None:
    spec = spec_of("cuda:0", limit=600, batch=32, epochs=1)
    run_id, events, exitcode = child_events(db_path, spec, child_with_too_few_outputs)

    record, keys, losses, kinds = stored(db_path, run_id)
    assert record.status == st.FAILED, (record.reason, record.hint, exitcode)
    expected = CudaContextLost(DEVICE_FAULTS[0])
    assert (record.reason, record.hint) == (expected.message, expected.hint)
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert len(finished) == 1 and finished[0].reason == record.reason
    steps = [e for e in events if isinstance(e, StepEnd)]
    assert len(steps) == GOOD_STEPS == keys["train.loss"] == len(losses)
    assert all(math.isfinite(v) for v in losses)
    assert WEIGHTS_KIND not in kinds
    # The exit code is not checked: tearing down a lost context may abort the process
    # after the run is recorded, and the job thread keeps a recorded failure as it is.

    # This process's GPU is untouched: it computes, and a new run trains to the end.
    assert torch.ones(1024, device="cuda:0").sum().item() == 1024
    fresh = run_job(spec, db_path, sample_system=False)
    assert fresh is not None and fresh.status == st.COMPLETED, (fresh.reason, fresh.hint)


def fill_device(device: torch.device) -> list[torch.Tensor]:
    """Take every block the caching allocator can still get, down to its smallest (512 B)."""
    taken: list[torch.Tensor] = []
    size = 1 << 36
    while size >= 512:
        try:
            taken.append(torch.empty(size, dtype=torch.uint8, device=device))
        except torch.OutOfMemoryError:
            size //= 2
    return taken


@needs_cuda
def test_running_out_of_gpu_memory_fails_the_run_with_a_sentence_and_keeps_its_metrics(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real out-of-memory error in epoch 2: the memory is filled just before a forward pass.

    The filler runs before the forward pass of the model the loop builds, so the batch is
    already on the device and the error comes from the forward pass, where the loop catches it.
    """
    batch = 64
    spec = spec_of(
        "cuda:0", limit=1200, batch=batch, epochs=3, image_size=None, cudnn_benchmark=False
    )
    fault = FaultAfter()
    hog: list[torch.Tensor] = []
    free_after: list[int] = []

    def exhaust(module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        if fault.due and not hog:
            hog.extend(fill_device(inputs[0].device))
            free_after.append(int(torch.cuda.mem_get_info(inputs[0].device)[0]))

    on_forward(monkeypatch, exhaust)
    try:
        record = run_job(spec, db_path, emit=fault.emit, flush_interval_s=0.2)
    finally:
        hog.clear()
        torch.cuda.empty_cache()
    assert record is not None and record.status == st.FAILED
    assert record.reason == f"The GPU ran out of memory at batch size {batch}.", record.reason
    assert record.hint and record.hint.endswith("."), record.hint
    assert "suggested_batch_size" in record.summary
    assert free_after and free_after[0] < 1024 * MIB, free_after  # the device really was full
    assert_kept_what_it_had(db_path, record, fault)


def test_a_tuner_or_sweep_child_says_the_same_of_a_lost_cuda_context() -> None:
    """Children that report through ``report_failure`` get the device-fault sentence too."""
    from cnn_lab.engine.jobs.child_link import report_failure

    sent: list[tuple[object, ...]] = []
    report_failure(
        RuntimeError("CUDA error: device-side assert triggered"), sent.append, subject="Tuning"
    )
    assert sent[0][0] == "error" and "device-side assert" in str(sent[0][1])
    assert "internal error" not in str(sent[0][1])
    report_failure(IndexError("Target 12 is out of bounds."), sent.append, subject="Tuning")
    assert (
        sent[1][1]
        == "Tuning stopped with an internal error: IndexError: Target 12 is out of bounds."
    )
