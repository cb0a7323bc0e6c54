"""The time-left estimate behind every progress bar (engine/util/progress_eta.py)."""

from __future__ import annotations

import pytest

from cnn_lab.engine.util.progress_eta import EtaEstimator, StageProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_estimate_until_a_second_of_work_has_passed() -> None:
    clock = Clock()
    eta = EtaEstimator(clock)
    eta.update(0, 100)
    assert eta.seconds_left() is None
    clock.now += 0.5
    eta.update(10, 100)
    assert eta.seconds_left() is None  # half a second is too little to go on
    clock.now += 0.5
    eta.update(20, 100)
    assert eta.seconds_left() == pytest.approx(80 * 0.05)


def test_a_steady_rate_gives_the_exact_time_left_and_it_falls_between_reports() -> None:
    clock = Clock()
    eta = EtaEstimator(clock)
    eta.update(0, 10)
    for done in range(1, 6):
        clock.now += 2.0
        eta.update(done, 10)
    assert eta.seconds_left() == pytest.approx(10.0)
    clock.now += 1.5  # no report for a while: the time already spent counts
    assert eta.seconds_left() == pytest.approx(8.5)
    clock.now += 100
    assert eta.seconds_left() == 0.0


def test_a_slow_start_is_forgotten_as_the_rate_settles() -> None:
    """The moving average follows the recent rate, not the whole run's mean."""
    clock = Clock()
    eta = EtaEstimator(clock)
    eta.update(0, 100)
    clock.now += 20  # the first unit: a model loading, a cache warming
    eta.update(1, 100)
    for done in range(2, 31):
        clock.now += 1
        eta.update(done, 100)
    left = eta.seconds_left()
    assert left is not None
    assert 70 <= left < 80  # the plain mean (49 s / 30 units) would say 114 s


def test_a_new_total_or_a_step_back_starts_over() -> None:
    clock = Clock()
    eta = EtaEstimator(clock)
    eta.update(0, 10)
    clock.now += 5
    eta.update(5, 10)
    assert eta.seconds_left() is not None
    eta.update(0, 40)  # the next stage
    assert eta.seconds_left() is None
    clock.now += 2
    eta.update(4, 40)
    assert eta.seconds_left() == pytest.approx(18.0)
    eta.update(1, 40)  # went backwards: a restarted stage
    assert eta.seconds_left() is None


def test_no_total_means_no_estimate() -> None:
    clock = Clock()
    eta = EtaEstimator(clock)
    eta.update(0, 0)
    clock.now += 5
    eta.update(3, 0)
    assert eta.seconds_left() is None


def test_stage_progress_words_and_an_eta_that_restarts_with_each_stage() -> None:
    clock = Clock()
    words = StageProgress(clock)
    assert words.update("Listing files", 1, 0) == "Listing files"
    assert words.update("Decoding images", 0, 100) == "Decoding images · 0 of 100"
    for done in range(10, 60, 10):
        clock.now += 1.0
        text = words.update("Decoding images", done, 100)
    assert text == "Decoding images · 50 of 100 · 0:05 left"  # 10 a second, 50 to go
    # Another stage: its rate is unknown, so no time left until it has its own measurements.
    assert words.update("Finding duplicates", 0, 10) == "Finding duplicates · 0 of 10"
