"""Random specs and argument lists: each is accepted or refused with a sentence, never a crash.

Hypothesis writes thousands of spec documents (nested, wrongly typed, huge, NaN, unicode,
unknown keys, negative sizes) for RunSpec, SearchSpec and ArchitectureSpec, and hundreds of
argument lists for the commands that do not train. A document is either a valid spec that
survives a JSON round trip or a SpecError whose text is sentences on one line; a command
exits 0, 1 or 2, says why in one line when it refuses, and leaves the run database as it was.

Every run is derandomized (the same examples each time, so CI never flakes) and every crash
found here was fixed in the engine and is kept below as an explicit ``@example``.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

from cnn_lab.engine.cli.common import EXIT_USAGE
from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.jobs import job
from cnn_lab.engine.search.spec import ParamSpec, RangeSpec, SearchSpec
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, LayerSpec, RunSpec, TrainSpec
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from tests.engine.test_cli import Result, assert_refused_in_one_line, invoke

FAST = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is never flaky
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_a_sentence(text: str) -> None:
    """One or more sentences on one line, for a person: no traceback, no pydantic dump."""
    assert text and "\n" not in text and "Traceback" not in text, repr(text)
    assert text[0].isupper() and text.rstrip().endswith("."), repr(text)
    assert "validation error" not in text.lower() and "pydantic" not in text.lower(), text


# ==================================================================== (a) random documents

PLAUSIBLE: tuple[Any, ...] = (
    "sample:shapes", "small_cnn", "custom", "resnet18", "cpu", "cuda:0", "auto", "mps",
    "sgd", "adamw", "onecycle", "cosine", "fp16", "bf16", "squash", "pad", "val.accuracy",
    "val.loss", "grid", "tpe", "random", "median", "hflip", "translate", "conv2d", "relu",
    "linear", "residual", "", " ", 0, 1, 2, 3, -1, 20, 64, 0.5, 0.1, 1e-3, 1e30, -0.0,
    True, False, None,
)  # fmt: skip
SCALAR = hs.one_of(
    hs.sampled_from(PLAUSIBLE),
    hs.none(),
    hs.booleans(),
    hs.integers(-(2**70), 2**70),
    hs.integers(-(10**400), 10**400),  # beyond any float
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.text(max_size=20),  # any unicode, NUL and newlines included
)
JSON = hs.recursive(
    SCALAR,
    lambda children: (
        hs.lists(children, max_size=4) | hs.dictionaries(hs.text(max_size=10), children, max_size=4)
    ),
    max_leaves=4,
)
JUNK_KEYS = hs.sampled_from(
    ["bogus", "Epochs", "ｅｐｏｃｈｓ", "", "\x00", "__class__", "model_config"]
)


def document(fields: dict[str, hs.SearchStrategy[Any]]) -> hs.SearchStrategy[dict[str, Any]]:
    """Any subset of ``fields`` (each value from its strategy or anything), plus junk keys."""
    known = hs.fixed_dictionaries(
        {}, optional={k: hs.one_of(v, v, JSON) for k, v in fields.items()}
    )
    extra = hs.dictionaries(JUNK_KEYS, JSON, max_size=2)
    return hs.builds(lambda a, b: {**b, **a}, known, extra)


def _fields(spec: type[Any]) -> dict[str, hs.SearchStrategy[Any]]:
    return {name: SCALAR for name in spec.model_fields}


LAYER_KINDS = hs.sampled_from(
    ["conv2d", "relu", "linear", "global_avg_pool", "residual", "dropout", "nope", "Conv2D", ""]
)
LAYER_PARAMS = hs.dictionaries(
    hs.sampled_from(["out_channels", "kernel_size", "stride", "groups", "p", "x" * 61]) | hs.text(),
    SCALAR,
    max_size=3,
)
LAYER = hs.recursive(
    hs.fixed_dictionaries({"kind": LAYER_KINDS}, optional={"params": LAYER_PARAMS}),
    lambda children: hs.fixed_dictionaries(
        {"kind": LAYER_KINDS}, optional={"params": LAYER_PARAMS, "layers": hs.lists(children)}
    ),
    max_leaves=5,
)
AUGMENT = hs.lists(
    document({"name": hs.sampled_from(["hflip", "translate", "nope", ""]), "strength": SCALAR}),
    max_size=3,
)
ARCHITECTURE = document({**_fields(ArchitectureSpec), "layers": hs.lists(LAYER, max_size=4)})
RUN = document(
    {
        "schema_version": SCALAR,
        "name": SCALAR,
        "tags": hs.lists(hs.text(max_size=70), max_size=3),
        "dataset": document({**_fields(DatasetSpec), "augment": AUGMENT}),
        "architecture": ARCHITECTURE,
        "train": document(_fields(TrainSpec)),
    }
)
NUMBER = hs.one_of(
    hs.sampled_from([0, 1, 2, 10, 1e-3, 0.1, 1e300, -1e300, 5e-324, 1e-300, 2**53 + 1]),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.integers(-(10**6), 10**6),
)
RANGE = document(
    {
        "low": NUMBER,
        "high": NUMBER,
        "step": NUMBER,
        "log": hs.booleans(),
        "integer": hs.booleans(),
    }
)
PATHS = hs.sampled_from(
    ["train.lr", "train.epochs", "train.optimizer", "dataset.limit", "dataset.fold",
     "architecture.width", "schema_version", "train", "train.", ".lr", "bogus.x",
     "dataset.augment.0.strength", "", "a\nb"]
)  # fmt: skip
PARAM = document(
    {
        "path": PATHS,
        "values": hs.lists(SCALAR, max_size=4),
        "choices": hs.lists(SCALAR, max_size=4),
        "range": RANGE,
    }
)
SEARCH = document(
    {
        "base": hs.just({}) | RUN,  # {} is the default run: the search's own checks then run
        "params": hs.lists(PARAM, min_size=1, max_size=3),
        "strategy": hs.sampled_from(["grid", "random", "tpe", "bayes"]),
        "pruner": hs.sampled_from(["none", "median", "halving", "hyperband", "x"]),
        "metric": hs.sampled_from(["val.accuracy", "val.loss", "loss"]),
        "trials": NUMBER,
        "timeout_s": NUMBER,
        "seeds": NUMBER,
        "folds": NUMBER,
        "schema_version": SCALAR,
        "name": SCALAR,
    }
)


def accepted_or_a_sentence(parse: Callable[[Any], Any], doc: Any) -> Any:
    """The spec ``parse`` made of ``doc``, round-tripped through JSON; or None if refused."""
    try:
        spec = parse(doc)
    except SpecError as exc:
        assert_a_sentence(str(exc))
        return None
    again = type(spec).from_json(spec.model_dump_json())
    assert again == spec
    return spec


@settings(FAST, max_examples=500)
@given(doc=RUN)
@example(doc={"train": {"grad_clip": math.inf}})
def test_random_run_specs_are_accepted_or_refused_with_a_sentence(doc: dict[str, Any]) -> None:
    spec = accepted_or_a_sentence(RunSpec.from_dict, doc)
    if spec is not None:
        assert spec.spec_hash() == RunSpec.from_json(spec.to_json()).spec_hash()


@settings(FAST, max_examples=300)
@given(doc=ARCHITECTURE)
@example(doc={"width": 1e400})
@example(doc={"preset": "custom", "layers": [{"kind": "relu", "params": {"p": math.nan}}]})
def test_random_architecture_specs_are_accepted_or_refused_with_a_sentence(
    doc: dict[str, Any],
) -> None:
    accepted_or_a_sentence(ArchitectureSpec.from_dict, doc)


@settings(FAST, max_examples=600)
@given(doc=SEARCH)
@example(  # a grid of 1e300 points: counted, never listed (it hung building the list)
    doc={
        "strategy": "grid",
        "params": [{"path": "train.lr", "range": {"low": 1e-300, "high": 1e300, "step": 1e-300}}],
    }
)
@example(  # an infinite step: int(inf) raised OverflowError inside validation
    doc={
        "params": [
            {
                "path": "train.epochs",
                "range": {"low": 1, "high": 3, "step": math.inf, "integer": True},
            }
        ],
        "trials": 2,
    }
)
@example(  # NaN and infinity cannot be saved as JSON, so they cannot be searched values
    doc={"strategy": "grid", "params": [{"path": "train.lr", "values": [0.1, math.nan]}]}
)
@example(doc={"params": [{"path": "train.lr", "range": {"low": 0.1, "high": 1}}],
              "timeout_s": math.inf})  # fmt: skip
@example(doc={"params": [{"path": "a\nb", "values": [1], "choices": [2]}], "trials": 1})
def test_random_search_specs_are_accepted_or_refused_with_a_sentence(doc: dict[str, Any]) -> None:
    search = accepted_or_a_sentence(SearchSpec.from_dict, doc)
    if search is not None:  # what the sweep panel and the queue ask of any valid search
        budget = search.budget()
        assert budget is None or budget >= 1
        for param in search.params:
            grid, points = param.grid(), param.points()
            assert grid is None or len(grid) == points


@settings(FAST, max_examples=200)
@given(
    text=hs.one_of(
        hs.text(max_size=60),
        hs.binary(max_size=60),
        JSON.map(repr),
        hs.integers(1, 100_000).map(lambda n: "[" * n),  # nests past the recursion limit
    ),
    parse=hs.sampled_from([RunSpec.from_json, SearchSpec.from_json, ArchitectureSpec.from_json]),
)
@example(text="[" * 100_000, parse=RunSpec.from_json)
@example(text=b"\xff\xfe\x00", parse=SearchSpec.from_json)
@example(text='{"x": NaN}', parse=ArchitectureSpec.from_json)
def test_random_spec_files_are_accepted_or_refused_with_a_sentence(
    text: str | bytes, parse: Callable[[str | bytes], Any]
) -> None:
    try:
        parse(text)
    except SpecError as exc:
        assert_a_sentence(str(exc))


def test_the_specs_the_fuzz_checks_have_sentences_for_every_kind() -> None:
    """The refusals the documents above reach, spelled out once (a failing fuzz is noisy)."""
    with pytest.raises(SpecError, match=r"^The architecture spec is not valid: width: "):
        ArchitectureSpec.from_dict({"width": 100})
    with pytest.raises(SpecError, match="must be a JSON object"):
        LayerSpec.from_dict([])
    with pytest.raises(SpecError, match=r"^The search spec is not valid JSON: it nests too"):
        SearchSpec.from_json("[" * 100_000)
    with pytest.raises(SpecError, match=r"range 0 to 1e\+300|has 4,611,686,018,427,387,905"):
        SearchSpec.from_dict(
            {
                "base": {},
                "strategy": "grid",
                "params": [{"path": "train.lr", "range": {"low": 0, "high": 1e300, "step": 1}}],
            }
        )
    assert RangeSpec(low=0, high=1e300, step=1e-300).points() == 2**62 + 1
    assert ParamSpec(path="train.lr", range={"low": 0, "high": 1}).points() is None


# =============================================================== (b) random argument lists


def _db_state(db: Path) -> tuple[str, int]:
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    conn.close()
    return hashlib.sha256(db.read_bytes()).hexdigest(), runs


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder with a seeded run database, bad files, and nothing else.

    The commands run with it as the current folder (so a random relative path lands in it)
    and with it as the default database ($CNN_LAB_DB).
    """
    db = tmp_path / "runs.sqlite"
    spec = RunSpec.from_dict({"dataset": {"limit": 200, "image_size": 16}})
    with RunStore.open(db) as store:
        done = store.create_run(spec_json=spec.to_json(), spec_hash=spec.spec_hash(), name="a")
        store.finish_run(done, st.COMPLETED, summary={"epochs": 1, "best_val_accuracy": 0.5})
        failed = store.create_run(spec_json=spec.to_json(), spec_hash=spec.spec_hash())
        store.finish_run(failed, st.FAILED, reason="It failed.")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "img.png")
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\xfd\x00garbage")
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "nested.json").write_text("[" * 100_000, encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2, 3]", encoding="utf-8")
    (tmp_path / "nan.json").write_text('{"width": NaN}', encoding="utf-8")
    (tmp_path / "wide.json").write_text('{"preset": "small_cnn", "width": 99}', encoding="utf-8")
    (tmp_path / "run.json").write_text('{"architecture": {"preset": "nope!"}}', encoding="utf-8")
    (tmp_path / "grid.json").write_text(
        '{"strategy": "grid", "params": [{"path": "train.lr", "range": '
        '{"low": 0, "high": 1e300, "step": 1e-300}}]}',
        encoding="utf-8",
    )
    (tmp_path / "search.json").write_text(
        '{"params": [{"path": "train.nope", "values": [1]}], "trials": 1}', encoding="utf-8"
    )
    (tmp_path / "empty.zip").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNN_LAB_DB", str(db))
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    yield db


FILES = (
    "bad.json", "binary.json", "empty.json", "nested.json", "list.json", "nan.json",
    "wide.json", "run.json", "grid.json", "search.json", "folder.json", "missing.json",
    "no/such/folder/x.json", "empty-folder", "empty.zip", "img.png",
)  # fmt: skip
VALUES = (
    "sample:shapes", "nowhere:thing", "sample:nope", "", " ", "cpu", "auto", "gpu",
    "cuda:0", "cuda:99", "CUDA", "mps", "adamw", "sgd", "lbfgs", "small_cnn", "resnet18",
    "nope", "bad name!", "0", "1", "2", "-1", "5", "19", "20", "64", "0.01", "1e-3",
    "1e400", "nan", "inf", "-inf", "x", "99999999999999999999", "3x224x224", "64x8192x8192",
    "0x0x0", "3×32", "auto", "test", "val", "squash", "hflip,translate=0.5", "hflip=x",
    "status:completed", "lr<0.01", "sort:-lr", "tag:", "train.lr>=", "(", '"open',
    "~no-such-user-here/runs.sqlite",
)  # fmt: skip
# Control characters are left out: argparse echoes an unrecognised argument as it is, so one
# with a newline in it spans two lines (a person cannot type that by accident).
TEXT = hs.text(hs.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
VALUE = hs.one_of(
    hs.sampled_from(VALUES + FILES),
    hs.integers(-(10**6), 10**7).map(str),
    hs.integers(-(10**30), 10**30).map(str),
    hs.floats(allow_nan=True, allow_infinity=True).map(repr),
    TEXT,
)
SWITCHES = ("--json", "--help-me", "-x", "--", "-1")
RUN_IDS = ("1", "2", "3", "0", "-1", "999", "abc", "1.5", "99999999999999999999999", "")
NO_RUN = ("3", "0", "-1", "999", "abc", "99999999999999999999999")
"""Run ids a report is asked about: a report of a real run is written, which is not fuzzing."""

DATA_FLAGS = (
    "--size", "--channels", "--resize", "--limit", "--val", "--test", "--folds", "--fold",
    "--augment", "--mixup", "--cutmix", "--balance",
)  # fmt: skip


def arguments(
    words: list[str], flags: tuple[str, ...], positional: hs.SearchStrategy[str]
) -> hs.SearchStrategy[list[str]]:
    """``words`` then a shuffle of flag/value pairs, lone flags, positionals and junk."""
    pair = hs.tuples(hs.sampled_from(flags), VALUE).map(list)
    lone = hs.one_of(hs.sampled_from(flags + SWITCHES), VALUE).map(lambda token: [token])
    where = positional.map(lambda token: [token])
    chunks = hs.lists(hs.one_of(pair, pair, where, where, lone), max_size=6)
    return chunks.map(lambda cs: [*words, *(token for chunk in cs for token in chunk)])


COMMANDS: dict[str, hs.SearchStrategy[list[str]]] = {
    "runs list": arguments(
        ["runs", "list"], ("--status", "--limit", "--archived", "--json"), VALUE
    ),
    "runs show": arguments(["runs", "show"], ("--json",), hs.sampled_from(RUN_IDS)),
    "report": arguments(
        ["report"],
        ("--out", "--format", "--no-images", "--sweep"),
        hs.sampled_from(NO_RUN),
    ),
    "evaluate": arguments(
        ["evaluate"], ("--split", "--mistakes", "--device", "--json"), hs.sampled_from(RUN_IDS)
    ),
    "predict": arguments(
        ["predict"],
        ("--top", "--csv", "--device", "--json"),
        hs.sampled_from((*RUN_IDS, "img.png", "empty-folder", "missing.png", ".")),
    ),
    "data inspect": arguments(
        ["data", "inspect"],
        (*DATA_FLAGS, "--json"),
        hs.sampled_from(("nowhere:thing", "sample:nope", "", " ", *FILES)),
    ),
    "model summary": arguments(
        ["model", "summary"],
        ("--input", "--classes", "--width", "--depth", "--batch-size", "--optimizer", "--json"),
        hs.sampled_from(("small_cnn", "nope", "bad name!", "", *FILES)),
    ),
    "model export": arguments(
        ["model", "export"],
        ("--format", "--out", "--json"),
        hs.sampled_from(RUN_IDS),
    ),
    "sweep": arguments(
        ["sweep"],
        ("--slots", "--create-only", "--cpu-too", "--json"),
        hs.sampled_from(FILES),
    ),
}


def refused_or_done(result: Result) -> None:
    """Exit 0 with output, or 1/2 with one line on stderr saying why; never a traceback."""
    assert "Traceback" not in result.err + result.out, result.err
    assert result.code in {0, 1, 2}, result
    if result.code == 0:
        assert result.out, result
    else:
        assert_refused_in_one_line(result)


@pytest.mark.parametrize("command", list(COMMANDS))
@settings(FAST, max_examples=50)
@given(data=hs.data())
def test_random_arguments_are_done_or_refused_in_one_line_and_leave_the_database_as_it_was(
    world: Path, command: str, data: hs.DataObject
) -> None:
    argv = data.draw(COMMANDS[command], label="argv")
    before = _db_state(world)
    refused_or_done(invoke(argv))
    assert _db_state(world) == before, "the run database changed"


CRASHES = [
    (["runs", "list", "--limit", "99999999999999999999999"], 2),  # OverflowError in SQLite
    (["runs", "list", "9223372036854775808"], 0),  # no run id is that big: OverflowError
    (["runs", "list", "²"], 0),  # "²".isdigit(), but int("²") raised ValueError
    (["runs", "list", "experiment:²"], 2),
    (["model", "summary", "small_cnn", "--width", "100"], 2),  # pydantic's ValidationError
    (["model", "summary", "nested.json"], 2),  # RecursionError in the JSON parser
    (["sweep", "grid.json"], 2),  # OverflowError counting a grid of 1e600 points
    (["sweep", "binary.json"], 2),  # UnicodeDecodeError reading the file
    (["sweep", "nested.json"], 2),
    (["train", "--spec", "binary.json"], 2),
    (["train", "--spec", "nested.json"], 2),
    (["train", "--model", "nested.json"], 2),
]


@pytest.mark.parametrize(("argv", "code"), CRASHES, ids=[" ".join(a) for a, _ in CRASHES])
def test_the_crashes_the_fuzz_found_are_answered_in_one_line(
    world: Path, argv: list[str], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each argument list here once ended in a traceback (or a hang); now it is answered."""
    monkeypatch.setattr(job, "run_job", FakeJob())
    before = _db_state(world)
    result = invoke(argv)
    refused_or_done(result)
    assert result.code == code, result
    assert _db_state(world) == before


# ---------------------------------------------------------------- train, without training

TRAIN_FLAGS = (
    "--data", "--model", "--spec", "--epochs", "--batch-size", "--lr", "--optimizer",
    "--schedule", "--precision", "--grad-accum", "--world-size", "--device", "--seed",
    "--limit", "--size", "--val", "--test", "--folds", "--fold", "--augment", "--mixup",
    "--name", "--db",
)  # fmt: skip
TRAIN_ARGS = arguments(
    [], (*TRAIN_FLAGS, "--epochs=2", "--lr=-0.5", "--limit=5", "--compile"), VALUE
)


class FakeJob:
    """Stands in for ``run_job``: the test is about parsing and validation, not training."""

    def __init__(self) -> None:
        self.specs: list[RunSpec] = []

    def __call__(self, spec: RunSpec, db_path: str | os.PathLike[str], **_: Any) -> RunRecord:
        assert isinstance(spec, RunSpec)
        assert Path(db_path).is_absolute()
        self.specs.append(spec)
        now = time.time()
        return RunRecord(
            id=len(self.specs),
            name=spec.name,
            status=st.COMPLETED,
            reason=None,
            hint=None,
            spec_json=spec.to_json(),
            spec_hash=spec.spec_hash(),
            dataset=spec.dataset.source,
            model=spec.architecture.preset,
            device=spec.train.device,
            host=None,
            pid=None,
            created_at=now,
            started_at=now,
            ended_at=now,
            heartbeat_at=now,
            summary={"epochs": spec.train.epochs, "best_val_accuracy": 0.5},
        )


@pytest.fixture
def fake_job(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJob]:
    fake = FakeJob()
    monkeypatch.setattr(job, "run_job", fake)  # cmd_train imports it from jobs.job when called
    yield fake


@settings(FAST, max_examples=150)
@given(argv=TRAIN_ARGS)
@example(argv=["--spec", "binary.json"])
@example(argv=["--model", "nested.json"])
def test_random_train_arguments_are_accepted_or_refused_in_one_line(
    world: Path, fake_job: FakeJob, argv: list[str]
) -> None:
    """Impossible values are refused before training starts; what is accepted is valid."""
    before = len(fake_job.specs), _db_state(world)
    result = invoke(["train", *argv])  # any exception but SystemExit fails the test
    assert "Traceback" not in result.err + result.out
    if result.code == 0:
        assert len(fake_job.specs) == before[0] + 1
        assert len(result.out.splitlines()) == 1, result.out
        assert result.err == ""
        spec = fake_job.specs[-1]
        assert RunSpec.from_json(spec.to_json()) == spec  # what was accepted is a valid spec
    else:
        assert len(fake_job.specs) == before[0]
        assert_refused_in_one_line(result)
        assert result.code == EXIT_USAGE
    assert _db_state(world) == before[1]
