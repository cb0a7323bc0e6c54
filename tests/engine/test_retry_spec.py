"""The out-of-memory retry spec (engine/jobs/retry.py): the batch that fits, the same
effective batch."""

from __future__ import annotations

from cnn_lab.engine.jobs.retry import retry_spec, suggested_batch
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st


def test_only_a_failed_run_with_a_recorded_fit_offers_a_retry() -> None:
    assert suggested_batch(st.FAILED, {"suggested_batch_size": 64}) == 64
    assert suggested_batch(st.FAILED, {}) is None
    assert suggested_batch(st.FAILED, {"suggested_batch_size": None}) is None
    assert suggested_batch(st.STOPPED, {"suggested_batch_size": 64}) is None


def test_the_retry_keeps_the_effective_batch_through_accumulation() -> None:
    spec = RunSpec.from_dict({"name": "big", "train": {"batch_size": 256, "device": "cpu"}})
    retried = retry_spec(spec, 64)
    assert retried.train.batch_size == 64 and retried.train.grad_accumulation == 4
    assert retried.train.effective_batch == spec.train.effective_batch
    assert retried.name == "big" and retried.dataset == spec.dataset
    assert spec.train.batch_size == 256  # the failed run's spec is left as it was


def test_a_fit_that_does_not_divide_rounds_the_accumulation_up() -> None:
    spec = RunSpec.from_dict({"train": {"batch_size": 100, "grad_accumulation": 2}})
    retried = retry_spec(spec, 48)
    assert retried.train.grad_accumulation == 5  # 240 >= 200: never a smaller batch
    assert retry_spec(spec, 512).train.grad_accumulation == 1
