"""The run's clocks: wall time, training time per step, compile time, evaluation time, ETA.

Training time is the sum of the steps' times, without the steps that were mostly
compilation (torch.compile compiles on the first batch of each new shape) or cuDNN's kernel
autotuning (the first batch of each shape with cudnn.benchmark): both are one-off costs, not
the run's speed, so compiled and eager runs compare fairly. Evaluation is timed apart and
counted in the time left: a run's ETA is its remaining steps at the measured step rate plus
its remaining validation passes at the measured (or, before the first, estimated) pass time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.options import Compiled

EVAL_COST = 1 / 3
"""A forward pass costs about a third of a training step's forward, backward and update;
the estimate of a validation pass before the first one is measured."""


class Accounting:
    def __init__(
        self,
        compiled: Compiled,
        *,
        autotuning: bool,
        steps_per_epoch: int,
        train_images: int,
        val_images: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.now = clock
        self.compiled = compiled
        self.autotuning = autotuning
        self.steps_per_epoch = steps_per_epoch
        self.train_images = train_images
        self.val_images = val_images
        self.started = clock()
        self.eval_s: list[float] = []
        self._shapes: set[tuple[int, ...]] = set()
        self._step_start = self.started

    # ---- steps
    def epoch_started(self) -> None:
        self._step_start = self.now()

    def step_ended(self, shape: tuple[int, ...]) -> tuple[float, bool]:
        """The step's training seconds (0 when it was a one-off cost) and whether the timing
        split should drop it."""
        now = self.now()
        step_s, self._step_start = now - self._step_start, now
        compiling = self.compiled.was_compiling(step_s, shape)
        first_of_shape = shape not in self._shapes
        self._shapes.add(shape)
        if compiling:
            step_s = 0.0  # compile time is reported apart, as compile_s
        return step_s, compiling or (self.autotuning and first_of_shape)

    def step_restarted(self) -> None:
        """Time from here belongs to the next step (after the stop and logging checks)."""
        self._step_start = self.now()

    @property
    def elapsed_s(self) -> float:
        return self.now() - self.started

    # ---- evaluation
    def evaluated(self, seconds: float) -> None:
        self.eval_s.append(seconds)

    def eta_s(self, progress: ck.Progress, epoch_train_s: float) -> float:
        """Seconds left: the remaining steps and the remaining validation passes."""
        done = max(progress.step, 1)
        per_step = (progress.train_time_s + epoch_train_s) / done
        steps_left = max(progress.total_steps - progress.step, 0)
        epochs_in_run = math.ceil(progress.total_steps / max(self.steps_per_epoch, 1))
        evals_left = max(epochs_in_run - progress.epochs_done, 0)
        if self.eval_s:
            per_eval = sum(self.eval_s) / len(self.eval_s)
        else:
            per_image = per_step * self.steps_per_epoch / max(self.train_images, 1)
            per_eval = per_image * self.val_images * EVAL_COST
        return per_step * steps_left + per_eval * evals_left
