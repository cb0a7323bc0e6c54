"""Run one tuner in a child process and hear what it says as Qt signals.

``TuneRunner.start`` runs engine/tune/child.py's ``tune_child`` for a kind ("lr",
"batch-size", "speed"), a spec and options; see app/bridge/child_runner.py for the thread,
Stop and shutdown. Besides ``finished``/``failed``/``cancelled`` it emits
``progress(stage, done, total)`` as the tuner works, at most about ten a second.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.child_runner import ChildRunner, ChildThread
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.tune.child import tune_child


class TuneRunner(ChildRunner):
    """Runs one tuner at a time in a child process."""

    progress = Signal(str, int, int)

    what = "tuning"
    stop_grace_s = 2.0
    """After Stop, the child gets this long to end by itself; then it is killed."""
    shutdown_grace_s = 0.5
    """On shutdown (the window closing) less: a tuner keeps nothing worth saving."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    def start(self, kind: str, spec: RunSpec, options: dict[str, Any] | None = None) -> None:
        """Run tuner ``kind`` ("lr", "batch-size", "speed") on ``spec`` in a new child."""
        self._launch(
            ChildThread(
                tune_child,
                (kind, spec.to_json(), dict(options or {})),
                f"cnn-lab-tune-{kind}",
                coalesce="progress",
            )
        )

    def _relay(self, message: tuple[Any, ...]) -> None:
        if message[0] == "progress" and not self._stopping:
            _, stage, done, total = message
            self.progress.emit(stage, done, total)
