"""Run ``optimize`` in a child process and hear its phases and progress as Qt signals.

``OptimizeRunner.start`` runs engine/optimize/child.py's ``optimize_child``; see
app/bridge/child_runner.py for the thread, Stop and shutdown. Besides
``finished``/``failed``/``cancelled`` it emits ``phase_started(phase)`` as each phase begins
and ``progress(tuple)`` (phase, stage, done, total, elapsed_s, budget_s), at most about ten
a second. Stop asks the child to end its step: ``optimize`` then returns the best run so far,
which arrives as ``finished`` like any result.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.child_runner import ChildRunner, ChildThread


class OptimizeRunner(ChildRunner):
    """Runs one optimization at a time in a child process."""

    phase_started = Signal(str)
    progress = Signal(tuple)

    what = "optimize"
    stop_grace_s = 30.0
    """After Stop the child ends its step, records the run and writes the result: a final
    run's last evaluation and checkpoint can take this long on a big model."""
    shutdown_grace_s = 10.0
    """On shutdown (the window closing) less, but enough for the child to end its step, mark
    the run stopped and store what it decided, as the close question promises; the window
    says it is stopping meanwhile."""

    def __init__(self, parent: QObject | None = None, *, planted: str | None = None) -> None:
        """``planted`` ("module:function") is for tests only: fast tuners in the child."""
        super().__init__(parent)
        self.planted = planted

    def start(self, request: dict[str, Any], db_path: str) -> None:
        """Optimize ``request`` (see ``optimize_child``) on the run database ``db_path``."""
        # Here, not at the top: the engine's optimize package loads optuna on import, and
        # the window must appear without waiting for it.
        from cnn_lab.engine.optimize.child import optimize_child

        self._launch(
            ChildThread(
                optimize_child,
                (dict(request), str(db_path)),
                "cnn-lab-optimize",
                after=(self.planted,),
                coalesce="progress",
            )
        )

    def _relay(self, message: tuple[Any, ...]) -> None:
        if self._stopping and message[0] == "progress":
            return
        if message[0] == "phase":
            self.phase_started.emit(str(message[1]))
        elif message[0] == "progress":
            self.progress.emit(tuple(message[1:]))
