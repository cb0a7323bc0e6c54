"""Importing a real photo folder: cnn-lab against the machine's limit, and at 100,000 files.

Camera mode (the default): a folder of camera-sized photos (long side 1,000 to 4,000 px, JPEG
at quality 70 to 95, one file in 50 a PNG) made from the real photographs in scikit-image's
package data (benchmarks/photo_folder.py), then, at each size, a cold import by cnn-lab (the
Data panel's ``prepare_dataset``: listing, decoding into the cache, fingerprints, duplicates,
report) against

  (a) ``draft``: a plain PIL decode-and-resize over a process pool, one worker per core, with
      draft decoding: the machine's limit for this work (it fingerprints nothing, checks
      nothing and writes nothing to disk);
  (b) ``plain``: the same without draft, what people write.

cnn-lab's import is also run with its decoding forced onto threads (CNN_LAB_DECODE=threads)
instead of worker processes, to show which of the two scales on this machine.

It also imports again warm (unchanged folder) and samples the summed RSS of the import's
process tree. Goals (issue 19): cnn-lab within 1.25x of (a), peak RSS below 1.5 GB, a warm
import below 10 % of the cold one.

Scale mode (``--files 100000 --size 64``): small photos (96 to 256 px), imported at two
folder sizes, printing seconds per 10,000 files for each stage (listing, decoding into the
cache, duplicates and report) so that flat numbers show near-linear stages.

Each run prints one JSON line. The photo folders are kept under ``--work`` (default: the
user cache) so a second run does not make them again.

    python benchmarks/import_scale.py [--files 5000] [--sizes 128,224]
    python benchmarks/import_scale.py --files 100000 --size 64
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make benchmarks.photo_folder importable
    sys.path.insert(0, str(ROOT))
IMPORT = """
import json, resource, sys, time
from cnn_lab.engine.data.prepare import prepare_dataset
from cnn_lab.engine.specs import DatasetSpec

stages, started = [], time.perf_counter()
def progress(stage, done, total):
    if not stages or stages[-1][0] != stage:
        stages.append((stage, time.perf_counter() - started))
prepared = prepare_dataset(DatasetSpec(source=sys.argv[1], image_size=int(sys.argv[2]),
                                       channels=3), progress)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "stages": stages, "images": len(prepared),
                  "decoded": prepared.report.cache.decoded,
                  "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
BASELINE = """
import json, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np
from PIL import Image

SIZE, DRAFT = int(sys.argv[2]), sys.argv[3] == "draft"

def load(path):
    try:
        with Image.open(path) as im:
            if DRAFT:
                im.draft("RGB", (SIZE, SIZE))
            return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    except Exception:
        return None

if __name__ == "__main__":
    started = time.perf_counter()
    files = sorted(str(p) for p in Path(sys.argv[1]).rglob("*") if p.is_file())
    out = np.empty((len(files), SIZE, SIZE, 3), np.uint8)
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        for i, pixels in enumerate(pool.map(load, files, chunksize=8)):
            if pixels is not None:
                out[i] = pixels
    print(json.dumps({"seconds": time.perf_counter() - started, "images": len(files)}))
"""


def run_measured(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a child Python; return its JSON line plus the peak summed tree RSS."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        text=True,
    )
    peak = [0]
    private = [0]  # RSS less file-backed pages: a memory map of the cache read is not held
    cpu: dict[int, float] = {}  # pid -> its CPU seconds when last seen (workers come and go)

    def sample() -> None:
        parent = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(_rss(p) for p in tree))
                private[0] = max(private[0], sum(_private(p) for p in tree))
                for process in tree:
                    with contextlib.suppress(psutil.Error):
                        times = process.cpu_times()
                        cpu[process.pid] = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"a measured run failed ({child.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak_mb"] = peak[0] / 2**20
    result["tree_private_peak_mb"] = private[0] / 2**20
    result["cpu_s"] = sum(cpu.values())
    return result


def _private(process: psutil.Process) -> int:
    """Resident memory that is the process's own (anonymous), not pages of mapped files."""
    try:
        info = process.memory_info()
        return info.rss - getattr(info, "shared", 0)
    except psutil.Error:
        return 0


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def photo_folder(work: Path, files: int, long_sides: tuple[int, int]) -> Path:
    from benchmarks.photo_folder import write_photo_folder

    folder = work / f"photos-{files}-{long_sides[0]}-{long_sides[1]}"
    if not (folder / ".complete").exists():
        started = time.perf_counter()
        print(f"making {files:,} photos in {folder} (once) ...", file=sys.stderr)
        write_photo_folder(
            folder / "images", files, long_sides=long_sides, workers=os.cpu_count() or 1
        )
        (folder / ".complete").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return folder / "images"


def camera(args: argparse.Namespace) -> dict:
    folder = photo_folder(args.work, args.files, (1000, 4000))
    out: dict = {"benchmark": "import_scale", "mode": "camera", "files": args.files}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as cache:
            env = {"CNN_LAB_CACHE": cache}
            cold = run_measured(IMPORT, str(folder), str(size), env=env)
            warm = run_measured(IMPORT, str(folder), str(size), env=env)
        with tempfile.TemporaryDirectory() as cache:
            env = {"CNN_LAB_CACHE": cache, "CNN_LAB_DECODE": "threads"}
            threads = run_measured(IMPORT, str(folder), str(size), env=env)
        draft = run_measured(BASELINE, str(folder), str(size), "draft")
        plain = run_measured(BASELINE, str(folder), str(size), "plain")
        out[f"{size}px"] = {
            "cnn_lab_cold_s": round(cold["seconds"], 1),
            "cnn_lab_warm_s": round(warm["seconds"], 2),
            "cnn_lab_on_threads_cold_s": round(threads["seconds"], 1),
            "baseline_draft_pool_s": round(draft["seconds"], 1),
            "baseline_plain_pool_s": round(plain["seconds"], 1),
            "ratio_vs_draft": round(cold["seconds"] / draft["seconds"], 2),
            # CPU seconds of each whole process tree: what the work costs, which another
            # program's load on the machine changes far less than the wall time.
            "cnn_lab_cpu_s": round(cold["cpu_s"], 1),
            "baseline_draft_cpu_s": round(draft["cpu_s"], 1),
            "cpu_ratio_vs_draft": round(cold["cpu_s"] / max(draft["cpu_s"], 1e-9), 2),
            "speedup_vs_plain": round(plain["seconds"] / cold["seconds"], 2),
            "warm_share": round(warm["seconds"] / cold["seconds"], 3),
            "peak_rss_mb": round(cold["tree_peak_mb"]),
            "peak_private_mb": round(cold["tree_private_peak_mb"]),
            "baseline_draft_peak_rss_mb": round(draft["tree_peak_mb"]),
            "images": cold["images"],
            "stages_s": _stage_seconds(cold),
        }
    out["cpu_count"] = os.cpu_count()
    return out


def scale(args: argparse.Namespace) -> dict:
    out: dict = {"benchmark": "import_scale", "mode": "scale", "size": args.sizes[0]}
    counts = sorted({max(args.files // 5, 1000), args.files})
    for count in counts:
        folder = photo_folder(args.work, count, (96, 256))
        with tempfile.TemporaryDirectory() as cache:
            cold = run_measured(
                IMPORT, str(folder), str(args.sizes[0]), env={"CNN_LAB_CACHE": cache}
            )
        per_10k = {k: round(v / count * 10_000, 2) for k, v in _stage_seconds(cold).items()}
        out[f"{count}_files"] = {
            "seconds": round(cold["seconds"], 1),
            "seconds_per_10k_files": per_10k,
            "peak_rss_mb": round(cold["tree_peak_mb"]),
            "peak_private_mb": round(cold["tree_private_peak_mb"]),
            "images": cold["images"],
        }
    out["cpu_count"] = os.cpu_count()
    return out


def _stage_seconds(result: dict) -> dict[str, float]:
    """Seconds in each stage, from the times each stage first reported progress."""
    marks = [(name, at) for name, at in result["stages"]] + [("end", result["seconds"])]
    seconds: dict[str, float] = {}
    for (name, at), (_, until) in itertools.pairwise(marks):
        seconds[name] = round(seconds.get(name, 0.0) + until - at, 2)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--sizes", "--size", default="128,224", help="comma-separated sides")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnn-lab-bench",
        help="where the generated photo folders are kept between runs",
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    small = len(args.sizes) == 1 and args.sizes[0] <= 64 and args.files >= 20_000
    print(json.dumps(scale(args) if small else camera(args)))


if __name__ == "__main__":
    main()
