"""Run one sweep in a child process and hear its trials as Qt signals.

``SweepRunner.start`` runs engine/search/child.py's ``sweep_child`` on a search; see
app/bridge/child_runner.py for the thread, Stop and shutdown. Besides
``finished``/``failed``/``cancelled`` it emits ``trial(outcome_dict)`` each time a trial
finishes. Stop asks the child to end its trial after the current step and to summarise the
study; a killed sweep loses nothing, as its interrupted trial is queued again when the same
sweep runs next.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.app.bridge.child_runner import ChildRunner, ChildThread
from cnn_lab.engine.search.child import sweep_child
from cnn_lab.engine.search.spec import SearchSpec


class SweepRunner(ChildRunner):
    """Runs one sweep at a time in a child process."""

    trial = Signal(dict)
    slots_planned = Signal(list, str)  # the slots trials train on at once, and in words

    what = "sweep"
    stop_grace_s = 20.0
    """After Stop, the child gets this long to end its step and summarise; then it is killed."""
    shutdown_grace_s = 2.0
    """On shutdown (the window closing) less: the interrupted trial reruns on resume anyway."""

    def __init__(self, parent: QObject | None = None, *, sample_system: bool = True) -> None:
        """``sample_system`` is off in tests: GPU and CPU gauges only cost time there."""
        super().__init__(parent)
        self.sample_system = sample_system

    def start(
        self,
        search: SearchSpec,
        db_path: str,
        storage: str | None = None,
        *,
        cpu_too: bool = False,
        allowed: list[str] | None = None,
    ) -> None:
        """Run ``search`` on the run database ``db_path`` in a new child process.

        The child plans the slots (``cpu_too``: one trial on the CPU beside the GPUs;
        ``allowed``: the job queue's free slots) and says so with ``slots_planned``.
        """
        self._launch(
            ChildThread(
                sweep_child,
                (search.to_json(), str(db_path), storage),
                "cnn-lab-sweep",
                after=(self.sample_system, cpu_too, allowed),
            )
        )

    def _relay(self, message: tuple[Any, ...]) -> None:
        if message[0] == "trial":
            self.trial.emit(message[1])
        elif message[0] == "slots":
            self.slots_planned.emit(list(message[1]), str(message[2]))
