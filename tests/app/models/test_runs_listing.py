"""The Runs panel's listing model (app/models/runs_listing.py), without Qt."""

from __future__ import annotations

from cnn_lab.app.models.runs_listing import (
    ALL_ARCHIVED_TITLE,
    LIST_LIMIT,
    NO_RUNS_TITLE,
    RunsListing,
)


def test_the_widgets_values_become_one_store_query() -> None:
    listing = RunsListing()
    query = listing.set_filters("lr<0.01", "failed", True)
    assert listing.query == query
    assert (query.text, query.status, query.include_archived) == ("lr<0.01", "failed", True)
    assert (query.sort, query.descending, query.limit) == ("created", True, LIST_LIMIT)


def test_a_header_click_flips_the_same_column_and_starts_a_new_one_its_own_way() -> None:
    listing = RunsListing()
    listing.sort_by("created")
    assert (listing.query.sort, listing.query.descending) == ("created", False)
    listing.sort_by("name")  # names read A to Z first
    assert (listing.query.sort, listing.query.descending) == ("name", False)
    listing.sort_by("name")
    assert listing.query.descending is True
    listing.sort_by("best_val_accuracy")  # the best first
    assert (listing.query.sort, listing.query.descending) == ("best_val_accuracy", True)


def test_the_count_line_says_when_the_list_is_cut() -> None:
    listing = RunsListing()
    assert listing.count_text(1, "/db") == "1 run in /db"
    assert listing.count_text(1234, "/db") == "1,234 runs in /db"
    assert listing.count_text(LIST_LIMIT, "/db").startswith("The first 10,000 runs (narrow")


def test_a_search_that_matches_nothing_offers_to_clear_it() -> None:
    listing = RunsListing()
    listing.set_filters("  cats ", "failed", False)
    assert listing.filtered()
    message = listing.empty_message(stored=True, db_path="/db")
    assert message.title == "No run matches “cats” with status failed"
    assert message.offer_clear and not message.offer_archived
    listing.set_filters("   ", None, True)
    assert not listing.filtered()


def test_no_runs_listed_means_all_archived_or_none_yet() -> None:
    archived = RunsListing().empty_message(stored=True, db_path="/db")
    assert archived.title == ALL_ARCHIVED_TITLE and archived.offer_archived
    listing = RunsListing()
    listing.set_filters("", None, True)
    shown = listing.empty_message(stored=True, db_path="/db")
    assert shown.title == NO_RUNS_TITLE and not shown.offer_archived
    empty = RunsListing().empty_message(stored=False, db_path="/data/runs.sqlite")
    assert empty.title == NO_RUNS_TITLE and "/data/runs.sqlite" in empty.text
    assert not (empty.offer_clear or empty.offer_archived)
