"""The past sweeps' chooser, without Qt: what stays chosen when the list is read again, and
when Open and Resume can be used."""

from __future__ import annotations

from cnn_lab.app.models.sweep_past import PastSweeps, SavedButtons
from cnn_lab.engine.search.history import SavedSweep
from cnn_lab.engine.search.spec import SearchSpec

SEARCH = SearchSpec.from_dict(
    {"base": {}, "params": [{"path": "train.lr", "values": [0.01, 0.1]}], "strategy": "grid"}
)


def saved(name: str, counted: int, *, study_found: bool = True) -> SavedSweep:
    return SavedSweep(name, SEARCH, counted, 2, study_found=study_found)


def test_the_chosen_sweep_stays_chosen_when_the_list_is_read_again() -> None:
    past = PastSweeps()
    assert past.replace([], None) == -1 and past.chosen(-1) is None
    first = [saved("b", 2), saved("a", 1)]
    assert past.replace(first, None) == 0  # the newest
    assert past.replace([saved("c", 0), *first], first[1]) == 2  # "a", now third
    assert past.chosen(2) == first[1]
    assert past.replace([saved("c", 0)], first[1]) == 0  # gone: the newest again


def test_open_needs_a_free_results_side_and_resume_an_unfinished_study() -> None:
    past = PastSweeps()
    assert past.buttons(-1, busy=False) == SavedButtons(chooser=False, open=False, resume=False)
    past.replace([saved("done", 2), saved("half", 1), saved("lost", 1, study_found=False)], None)
    assert past.buttons(0, busy=False) == SavedButtons(chooser=True, open=True, resume=False)
    assert past.buttons(1, busy=False) == SavedButtons(chooser=True, open=True, resume=True)
    assert past.buttons(1, busy=True) == SavedButtons(chooser=True, open=False, resume=False)
    # Its study is gone: it opens from its runs, and resuming would start it afresh.
    assert past.buttons(2, busy=False) == SavedButtons(chooser=True, open=True, resume=False)
