"""The speed advisor's pick against the fastest combination found by trying them all.

``advise`` searches the speed options one at a time (coordinate descent, a dozen probes);
``exhaustive`` measures every combination of the same options with the same probes (the
baseline it must keep up with). Both run on the same spec, prepared data and device. Then the
advisor's pick, the exhaustive best and your settings are measured again turn about,
``--rounds`` times in a rotating order (so drift in the machine's load hits all three alike),
and the medians are printed with the probe seconds each search spent. ``ratio`` = pick /
exhaustive best images per second, medians (the claim: >= 0.95); when both searches chose
the same combination it is 1 by construction. Every round's rates, the best-of-rounds ratio
and the load average are printed too: on a machine shared with other work a probe can be
slowed several times over, and they show when that happened.

    python benchmarks/speed_advisor.py [--preset small_cnn] [--width 2] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from statistics import median
from typing import Any

from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.devices import describe_device, resolve_device
from cnn_lab.engine.tune.probe import prepare
from cnn_lab.engine.tune.speed import advise, exhaustive, probe_measurer
from cnn_lab.engine.tune.speed_measure import with_settings
from cnn_lab.engine.tune.speed_options import SPEED_OPTIONS

DEFAULT_OPTIONS = [name for name in SPEED_OPTIONS if name != "compile"]
"""Compile is opt-in (--compile): one cold compile costs about 30 s on a 2-core CPU, and the
exhaustive search would compile once per combination of the other options."""


def make_spec(args: argparse.Namespace) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": args.limit, "image_size": args.size},
            "architecture": {"preset": args.preset, "width": args.width},
            "train": {"batch_size": args.batch_size, "device": args.device, "seed": 0},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="small_cnn")
    parser.add_argument("--width", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also search torch.compile")
    parser.add_argument("--options", nargs="*", help="option names (default: all but compile)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    spec = make_spec(args)
    device = resolve_device(spec.train.device)
    options = args.options or DEFAULT_OPTIONS
    if args.compile and "compile" not in options:
        options = [*options, "compile"]
    prepared = prepare(spec.dataset)
    common: dict[str, Any] = {
        "options": options,
        "prepared": prepared,
        "warmup": args.warmup,
        "steps": args.steps,
    }
    start = time.perf_counter()
    advice = advise(spec, **common)
    advise_s = time.perf_counter() - start
    start = time.perf_counter()
    full = exhaustive(spec, confirm_rounds=0, **common)
    exhaustive_s = time.perf_counter() - start

    measure = probe_measurer(prepared, device, warmup=args.warmup, steps=args.steps)
    arms = {
        "pick": advice.best_settings,
        "best": full.best_settings,
        "baseline": advice.baseline_settings,
    }
    same = arms["pick"] == arms["best"]
    # Settings chosen by more than one arm are measured once a round and shared.
    distinct: dict[str, list[str]] = {}
    for name, settings in arms.items():
        distinct.setdefault(json.dumps(settings, sort_keys=True), []).append(name)
    groups = list(distinct.values())
    rates: dict[str, list[float]] = {name: [] for name in arms}
    for round_ in range(args.rounds):  # rotate the order so drift hits every arm alike
        shift = round_ % len(groups)
        for group in groups[shift:] + groups[:shift]:
            rate = measure(with_settings(spec, arms[group[0]])).images_per_s
            for name in group:
                rates[name].append(rate)
    pick, best, base = (median(rates[name]) for name in ("pick", "best", "baseline"))
    best_of = {name: max(values) for name, values in rates.items()}
    print(
        json.dumps(
            {
                "benchmark": "speed_advisor",
                "device": describe_device(device),
                "model": f"{args.preset} width {args.width:g}, {args.size}x{args.size}",
                "options": options,
                "advisor_pick": advice.changes,
                "exhaustive_best": full.changes,
                "same_combination": same,
                "advisor_images_per_s": round(pick, 1),
                "exhaustive_best_images_per_s": round(best, 1),
                "baseline_images_per_s": round(base, 1),
                "ratio": round(pick / best, 3),
                "ratio_best_of_rounds": round(best_of["pick"] / best_of["best"], 3),
                "advisor_speedup": round(pick / base, 3),
                "advisor_probes": advice.probes,
                "exhaustive_probes": full.probes,
                "advisor_probe_s": round(advice.probe_seconds, 1),
                "exhaustive_probe_s": round(full.probe_seconds, 1),
                "advisor_wall_s": round(advise_s, 1),
                "exhaustive_wall_s": round(exhaustive_s, 1),
                "rounds": args.rounds,
                "images_per_s_each_round": {
                    name: [round(value, 1) for value in values] for name, values in rates.items()
                },
                "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "batch_size": args.batch_size,
                "images": args.limit,
            }
        )
    )


if __name__ == "__main__":
    main()
