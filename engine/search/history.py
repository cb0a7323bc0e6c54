"""The sweeps a run database has seen, and which of them stopped before their budget was spent.

Optuna is imported only when there is a sweep to look at: the Sweep panel imports this module
at start, and the window must appear quickly.

A sweep killed with the app, or stopped, resumes when the same search runs again (study.py).
The app must therefore be able to find it again after a restart, with nothing but the run
database: each sweep is recorded there as an experiment of kind "sweep" holding its
SearchSpec (``sweep_experiment``), and its study in the journal beside the database says how
many trials count so far. A sweep whose counted trials fall short of its budget is
unfinished, and the Sweep panel offers to resume it.

Every sweep, finished or not, can also be opened to read its results again (past.py); a
sweep whose study is not beside the database (run with a shared ``--storage``, or its
journal deleted) is then listed too, since its trials can still be rebuilt from its runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.store import RunRepository, is_sqlite, open_store

log = logging.getLogger(__name__)

SWEEP_KIND = "sweep"
"""The run store's experiment kind for a sweep; its name is the study's."""


@dataclass(frozen=True)
class SavedSweep:
    """One sweep as the database and its study remember it."""

    name: str
    search: SearchSpec
    counted: int
    """Trials that count against the budget: finished, not merely interrupted."""
    budget: int | None
    study_found: bool = True
    """False when the journal has no such study, or cannot be read: the sweep opens from its
    runs, and is never resumed from here (that would start its study afresh)."""

    @property
    def unfinished(self) -> bool:
        return self.study_found and self.budget is not None and self.counted < self.budget

    def describe(self) -> str:
        of = f" of {self.budget}" if self.budget is not None else ""
        return f"{self.name}: {self.counted}{of} trials done"

    def label(self) -> str:
        """``NAME: 3 of 6 trials, unfinished``: one line of the Sweep panel's chooser."""
        if not self.study_found:
            return f"{self.name}: its study is not here, opens from its runs"
        of = f" of {self.budget}" if self.budget is not None else ""
        done = "unfinished" if self.unfinished else "finished"
        return f"{self.name}: {self.counted}{of} trials, {done}"


def saved_sweeps(
    db_path: str | Path,
    storage: str | None = None,
    *,
    without_study: bool = False,
    store: RunRepository | None = None,
) -> list[SavedSweep]:
    """The sweeps recorded in ``db_path``, newest first; never raises for an unreadable one.

    Reads the default journal beside the database unless ``storage`` names another. A sweep
    whose study is not there (one run with a shared ``--storage``) is left out: resuming it
    from here would start its study afresh and repeat its trials. ``without_study`` lists it
    all the same (``study_found`` False, nothing counted), for opening its recorded runs.
    ``store``: that database, already open (the window's own), instead of opening it here.
    """
    if store is None and is_sqlite(db_path) and not Path(db_path).exists():
        return []  # a missing file is not created just to say it holds no sweeps
    try:
        if store is not None:
            rows = store.experiments(SWEEP_KIND)
        else:
            with open_store(db_path) as opened_store:
                rows = opened_store.experiments(SWEEP_KIND)
    except UserError as exc:
        log.info("no saved sweeps: %s", exc.message)
        return []
    if not rows:
        return []  # and Optuna (a tenth of a second to import) is never loaded
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = _open_journal(db_path, storage)
    found = []
    for row in rows:
        try:
            search = SearchSpec.from_json(row["spec_json"])
        except UserError:
            continue  # written by a newer cnn-lab, or damaged: nothing to resume from
        counted = _counted(opened, row["name"])
        if counted is not None:
            found.append(SavedSweep(row["name"], search, counted, search.budget()))
        elif without_study:
            found.append(SavedSweep(row["name"], search, 0, search.budget(), study_found=False))
    return found


def _open_journal(db_path: str | Path, storage: str | None) -> object | None:
    """The storage the studies are in; None when it is missing or cannot be read.

    A missing journal is not created (opening one would); a damaged one is logged, since
    the sweeps' runs are still in the database and nothing here is worth a traceback.
    """
    from cnn_lab.engine.search import storage as stg

    journal = storage or stg.default_storage(db_path)
    if "://" not in str(journal) and not Path(journal).exists():
        return None
    try:
        return stg.open_storage(storage, db_path)
    except Exception as exc:
        log.warning("the sweeps' study storage %s cannot be read: %s", journal, exc)
        return None


def _counted(storage: object, name: str) -> int | None:
    """Trials that count in study ``name``; None when the storage has no such study."""
    if storage is None:
        return None
    import optuna

    from cnn_lab.engine.search import storage as stg

    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return sum(stg.counted(t) for t in study.get_trials(deepcopy=False))
    except KeyError:
        return None
    except Exception as exc:  # a damaged journal: the sweep is listed as without a study
        log.warning("the study of sweep %s cannot be read: %s", name, exc)
        return None


__all__ = ["SWEEP_KIND", "SavedSweep", "saved_sweeps"]
