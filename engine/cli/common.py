"""What every command group shares: the parser class, exit codes, running a parsed command,
the output helpers, and the option groups more than one command takes.

Every module of this package imports from here and nothing imports a command group but
``engine/cli/main.py``, so the groups never import each other (pyproject.toml's import-linter
contracts keep it so). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, RunSpec, TrainSpec
from cnn_lab.engine.specs.base import load_json, printable
from cnn_lab.engine.specs.dataset import RESIZE_POLICIES

PROG = "cnn-lab"
EXIT_USAGE = 2
EXIT_FAILED = 1

Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]
"""What a command's ``set_defaults(handler=...)`` names: parsed arguments, stdout, stderr."""


# ---------------------------------------------------------------------------- parsing


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line, never a usage dump or traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help').\n")


def add_actions(parser: argparse.ArgumentParser, dest: str, metavar: str = "ACTION") -> Any:
    """A command's own sub-commands (``data inspect``, ``model list``...), parsed by ``Parser``."""
    return parser.add_subparsers(dest=dest, metavar=metavar, required=True, parser_class=Parser)


def add_db(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # A command's own --db is SUPPRESSed when absent, so "cnn-lab --db X runs list" keeps X
    # instead of the command's default overwriting it with None.
    parser.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        default=None if top else argparse.SUPPRESS,
        help="the run store: a SQLite file (or sqlite:///PATH) or a lab's "
        "postgresql://USER@HOST/DATABASE (default: $CNN_LAB_DB, else a file in the user "
        "data folder)",
    )


def run_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run a parsed command; a person's mistake becomes one line on ``err`` and exit 2.

    The streams default to ``sys.stdout``/``sys.stderr`` as they are *now*, not at import, so
    redirection and pytest's capture see the output.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return int(args.handler(args, out, err))
    except UserError as exc:
        # One line whatever the message quotes (a path or a name with a line break in it).
        err.write(f"{PROG}: {printable(str(exc))}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``cnn-lab model list | head``): stop quietly, as Unix tools
        # do. Point stdout at devnull so the interpreter's final flush does not complain.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


# ---------------------------------------------------------------------------- output


def summary_line(summary: dict[str, Any]) -> str:
    """A run's results in one line: epochs, best validation accuracy, loss, speed."""
    parts = []
    if summary.get("epochs") is not None:
        parts.append(f"{summary['epochs']} epochs")
    if summary.get("best_val_accuracy") is not None:
        parts.append(f"best val acc {percent(summary['best_val_accuracy'])}")
    if summary.get("final_train_loss") is not None:
        parts.append(f"final train loss {summary['final_train_loss']:.4f}")
    if summary.get("train_images_per_s"):
        parts.append(f"{summary['train_images_per_s']:,.0f} img/s")
    return ", ".join(parts) or "no results"


def percent(value: Any) -> str:
    """``97.5%``; empty for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1%}"


def progress_line(err: TextIO) -> Callable[[str, int, int], None]:
    """Progress on stderr at most twice a second, so stdout stays clean for --json."""
    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done == total:
            last[0] = now
            err.write(f"{stage}: {done:,}/{total:,}\n")
            err.flush()

    return show


class stop_on_interrupt:
    """Turn the first Ctrl-C into a graceful stop (a run is recorded as stopped)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, lambda *_: self.stop.set())

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---------------------------------------------------------------------------- data options


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Preprocessing, split and augmentation options, the same for train, tune and data."""
    parser.add_argument(
        "--size", type=int, default=None, metavar="N", help="square image side (default: auto)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="3 (RGB) or 1 (greyscale) (default: auto: 1 when every image is greyscale)",
    )
    parser.add_argument("--resize", choices=RESIZE_POLICIES, default="squash")
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use at most N images (stratified)"
    )
    parser.add_argument("--val", type=float, default=DatasetSpec().val_fraction, metavar="F")
    parser.add_argument("--test", type=float, default=0.0, metavar="F")
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        metavar="K",
        help="k-fold cross-validation: deal the non-test images into K folds (replaces --val)",
    )
    parser.add_argument(
        "--fold", type=int, default=0, metavar="I", help="the fold that validates, 0 to K-1"
    )
    parser.add_argument(
        "--augment",
        default="",
        metavar="LIST",
        help="augmentations as name[=strength],… e.g. hflip,translate=0.5",
    )
    parser.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA")
    parser.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA")
    parser.add_argument(
        "--balance", choices=("none", "weighted_loss", "weighted_sampler"), default="none"
    )
    parser.add_argument(
        "--normalize",
        choices=("auto", "dataset"),
        default="auto",
        help="mean and std to normalise with: auto (the published weights' own when --weights "
        "names some, else the training images'), or dataset (always the training images')",
    )


def dataset_dict(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """The DatasetSpec fields that ``add_data_options`` describe, for ``source``."""
    return {
        "source": source,
        "limit": args.limit,
        "image_size": args.size,
        "channels": args.channels,
        "resize": args.resize,
        "val_fraction": args.val,
        "test_fraction": args.test,
        "folds": args.folds,
        "fold": args.fold,
        "augment": _parse_augment(args.augment),
        "mixup_alpha": args.mixup,
        "cutmix_alpha": args.cutmix,
        "class_balance": args.balance,
        "normalize": getattr(args, "normalize", "auto"),
    }


def _parse_augment(text: str) -> list[dict[str, Any]]:
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, strength = part.partition("=")
        step: dict[str, Any] = {"name": name}
        if strength:
            try:
                step["strength"] = float(strength)
            except ValueError:
                raise SpecError(
                    f"--augment: the strength of {name!r} must be a number, got {strength!r}."
                ) from None
        steps.append(step)
    return steps


# ---------------------------------------------------------------------------- run options


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe a run (data, model, recipe, device), for train and tune."""
    parser.add_argument(
        "--spec",
        metavar="FILE.json",
        help="a whole run spec (data, architecture, recipe); the options below are then "
        "ignored except --name, --device, --db and --json",
    )
    parser.add_argument(
        "--data",
        default="sample:shapes",
        metavar="SOURCE",
        help="sample:NAME, a class-folder folder, a CSV, a zip/tar archive or an .npz "
        "(default: sample:shapes)",
    )
    parser.add_argument(
        "--model",
        default="small_cnn",
        metavar="NAME_OR_SPEC.json",
        help="a model preset, or an architecture saved from the Architecture panel "
        "(default: %(default)s)",
    )
    add_weights_options(parser)
    defaults = TrainSpec()
    parser.add_argument("--epochs", type=int, default=defaults.epochs, metavar="N")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, metavar="N")
    parser.add_argument("--lr", type=float, default=defaults.lr, metavar="X")
    parser.add_argument(
        "--optimizer",
        default=defaults.optimizer,
        metavar="NAME",
        help="sgd, adam, adamw or rmsprop (default: %(default)s)",
    )
    parser.add_argument(
        "--schedule",
        default=defaults.schedule,
        metavar="NAME",
        help="constant, step, cosine, onecycle or plateau (default: %(default)s)",
    )
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=defaults.precision)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--grad-accum", type=int, default=1, metavar="N", help="optimizer step every N batches"
    )
    parser.add_argument(
        "--world-size",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel processes started here (GPUs, or gloo on the CPU)",
    )
    parser.add_argument(
        "--device", default=None, metavar="DEVICE", help="auto, cpu, cuda or cuda:N (default: auto)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    add_data_options(parser)


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The RunSpec the options of ``add_spec_options`` (and an optional --name) describe."""
    name = getattr(args, "name", None)
    if args.spec:
        try:
            text = Path(args.spec).read_bytes()  # from_json decodes, refusing bad bytes in words
        except OSError as exc:
            raise UserError(f"Cannot read {args.spec}: {exc.strerror or exc}.") from None
        spec = RunSpec.from_json(text)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if args.device is not None:
            changes["train"] = {**spec.train.model_dump(), "device": args.device}
        return RunSpec.from_dict({**spec.model_dump(mode="json"), **changes}) if changes else spec
    return RunSpec.from_dict(
        {
            "name": name or "",
            "dataset": dataset_dict(args, args.data),
            "architecture": with_weights(architecture_from_args(args), args).model_dump(),
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "optimizer": args.optimizer,
                "schedule": args.schedule,
                "precision": args.precision,
                "compile": args.compile,
                "grad_accumulation": args.grad_accum,
                "world_size": args.world_size,
                "device": args.device or "auto",
                "seed": args.seed,
            },
        }
    )


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """Where the network starts: published weights by name, or a weights file."""
    parser.add_argument(
        "--weights",
        default=None,
        metavar="NAME",
        help="start from published weights, e.g. IMAGENET1K_V2 or DEFAULT, downloaded once "
        "into torch.hub's cache ($TORCH_HOME; $CNN_LAB_WEIGHTS_MIRROR serves them from a "
        "mirror); 'cnn-lab model list --weights PRESET' lists them. The input size and the "
        "mean and std then follow the weights unless --size or --normalize dataset",
    )
    parser.add_argument(
        "--pretrained",
        default=None,
        metavar="FILE",
        help="start from a weights file (.safetensors, or .pt/.pth saved with torch.save)",
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the classifier, keeping the pretrained weights fixed",
    )


def with_weights(spec: ArchitectureSpec, args: argparse.Namespace) -> ArchitectureSpec:
    """``spec`` starting from the weights ``add_weights_options`` name (none given: as is).

    ``DEFAULT`` is recorded as the concrete name it means today (``IMAGENET1K_V2``), so the
    run says which weights it started from whatever a later torchvision recommends.
    """
    weights = getattr(args, "weights", None)
    pretrained = getattr(args, "pretrained", None)
    freeze = getattr(args, "freeze_backbone", False)
    if weights is None and pretrained is None and not freeze:
        return spec
    changes: dict[str, Any] = {}
    if weights is not None:
        from cnn_lab.engine.models.published_weights import find_weights

        probe = spec.model_copy(update={"pretrained": "", "weights": ""})
        changes["weights"] = find_weights(probe, weights).name
    if pretrained is not None:
        changes["pretrained"] = pretrained
    if freeze:
        changes["freeze_backbone"] = True
    return ArchitectureSpec.from_dict({**spec.model_dump(), **changes})


def load_architecture(network: str) -> ArchitectureSpec:
    """A preset name, or a file holding an ArchitectureSpec or a RunSpec."""
    path = Path(network)
    if not (network.endswith(".json") or path.is_file()):
        return ArchitectureSpec.from_dict({"preset": network})
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise UserError(f"Cannot read {network}: {exc.strerror or exc}.") from None
    data = load_json(text, what=f"architecture file {network}")
    if isinstance(data, dict) and "architecture" in data:
        return RunSpec.from_dict(data).architecture
    return ArchitectureSpec.from_dict(data)


# ---------------------------------------------------------------------------- network sources


def add_network_source_options(parser: argparse.ArgumentParser) -> None:
    """--module FILE.py:Class (with --module-kwargs) and --timm NAME, instead of --model."""
    parser.add_argument(
        "--module",
        default=None,
        metavar="FILE.py:CLASS",
        help="train your own torch.nn.Module class from a Python file. This runs the file's "
        "code: giving the option is your decision to run it. The file's text is recorded with "
        "the run, so it can be resumed, evaluated and exported even if the file changes. The "
        "class gets num_classes/in_channels when its constructor takes them",
    )
    parser.add_argument(
        "--module-kwargs",
        default=None,
        metavar="JSON",
        help="keyword arguments for the --module class, as a JSON object: '{\"width\": 32}'",
    )
    parser.add_argument(
        "--timm",
        default=None,
        metavar="NAME",
        help="a timm model (needs pip install 'cnn-lab[timm]'); "
        "'cnn-lab model list --timm TEXT' searches them",
    )


def architecture_from_args(
    args: argparse.Namespace, network: str | None = None
) -> ArchitectureSpec:
    """The architecture --module/--timm name, else ``network`` (default: --model)."""
    module = getattr(args, "module", None)
    timm_name = getattr(args, "timm", None)
    kwargs_text = getattr(args, "module_kwargs", None)
    if module and timm_name:
        raise UserError("Give --module or --timm, not both.")
    if kwargs_text and not module:
        raise UserError("--module-kwargs needs --module (the class they are passed to).")
    if module:
        from cnn_lab.engine.models.module_source import (
            parse_module_kwargs,
            parse_module_ref,
            read_module_source,
        )

        path, class_name = parse_module_ref(module)
        source = read_module_source(path, class_name, parse_module_kwargs(kwargs_text))
        return ArchitectureSpec.from_dict({"preset": "module", "module": source.model_dump()})
    if timm_name:
        return ArchitectureSpec.from_dict({"preset": "timm", "timm_model": timm_name})
    return load_architecture(network if network is not None else args.model)
