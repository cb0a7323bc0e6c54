"""What closing the window would stop, as the question put to the person before it does.

Closing stops every run, empties the queue, and ends a sweep, a tuner or an optimization;
runs and sweeps are saved and can be resumed, an optimization keeps its best run and its
decisions so far, a tuner's measurement is lost. The window asks first, naming what
runs where, so a stray Ctrl+Q or a click on the wrong window's close box costs nothing.
"""

from __future__ import annotations

import psutil

TUNER_NAMES = {"lr": "learning-rate", "batch-size": "batch-size", "speed": "speed"}


def question_for_closing(
    running: dict[int, str],
    queued: int = 0,
    *,
    sweep: bool = False,
    tuner: str | None = None,
    optimize: bool = False,
) -> str | None:
    """The question for closing with ``running`` (run id -> where it trains), ``queued`` runs,
    a ``sweep``, a ``tuner`` (its kind) and an ``optimize`` going; None when nothing would be
    stopped.

    >>> question_for_closing({5: "cpu"})
    'A run is training (run 5 on cpu). Stop it and close? It is saved and can be resumed.'
    """
    parts: list[str] = []
    if running:
        where = ", ".join(f"run {run_id} on {slot}" for run_id, slot in running.items())
        count = "A run is" if len(running) == 1 else f"{len(running)} runs are"
        parts.append(f"{count} training ({where})")
    if queued:
        count = "1 run is" if queued == 1 else f"{queued} runs are"
        parts.append(f"{count} waiting in the queue")
    if sweep:
        parts.append("a sweep is running")
    if tuner:
        parts.append(f"the {TUNER_NAMES.get(tuner, tuner)} tuner is measuring")
    if optimize:
        parts.append("optimize is running")
    if not parts:
        return None
    saved = len(running) + queued + int(sweep)
    what = _joined(parts)
    them = "it" if saved + int(bool(tuner)) + int(optimize) == 1 else "them"
    optimize_kept = "keeps its best run so far and a record of what it decided."
    if optimize and not saved and not tuner:
        kept = f"It {optimize_kept}"
    elif not tuner:
        kept = "It is saved" if saved == 1 else "They are saved"
        kept += " and can be resumed."
    elif saved:
        kept = "Runs and sweeps are saved and can be resumed; the tuner's measurement is lost."
    else:
        kept = "What it measured so far is lost."
    if optimize and (saved or tuner):
        kept += f" Optimize {optimize_kept}"
    return f"{what[0].upper()}{what[1:]}. Stop {them} and close? {kept}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def process_alive(pid: int | None) -> bool:
    """Whether a job's process still runs; None (not started yet) counts as running."""
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or not ours to look at any more
        return False
