"""The one resume rule (engine/jobs/resume.py) that the CLI, the JobController and the Runs
panel's Resume button share."""

from __future__ import annotations

import pytest

from cnn_lab.engine.jobs.resume import resume_refusal
from cnn_lab.engine.store import status as st


@pytest.mark.parametrize("status", [st.STOPPED, st.FAILED, st.CRASHED])
def test_an_unfinished_ended_run_resumes_as_it_is(status: str) -> None:
    assert resume_refusal(3, status) is None
    assert resume_refusal(3, status, epochs=5, epochs_done=2) is None


@pytest.mark.parametrize("status", [st.QUEUED, st.RUNNING])
def test_a_run_a_job_owns_is_refused_whatever_the_epochs(status: str) -> None:
    refusal = resume_refusal(7, status, epochs=10)
    assert refusal == f"Run 7 is {status}; only a run that has ended can be resumed."


def test_a_completed_run_resumes_only_to_train_more_epochs() -> None:
    refusal = resume_refusal(4, st.COMPLETED)
    assert refusal is not None and "--epochs" in refusal and refusal.startswith("Run 4 completed")
    assert resume_refusal(4, st.COMPLETED, epochs=3, epochs_done=2) is None


def test_the_new_total_may_not_be_below_the_epochs_trained() -> None:
    refusal = resume_refusal(5, st.COMPLETED, epochs=1, epochs_done=2)
    assert refusal is not None and "already trained 2 epochs" in refusal
    assert "must be at least that" in refusal
    assert resume_refusal(5, st.STOPPED, epochs=0) is not None  # at least one epoch
    assert resume_refusal(5, st.COMPLETED, epochs=2, epochs_done=2) is None


def test_a_status_the_rule_does_not_know_is_refused() -> None:
    assert resume_refusal(6, "archived") is not None
