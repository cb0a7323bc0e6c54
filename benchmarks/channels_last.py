"""Training throughput with the channels-last (NHWC) layout against the default NCHW layout.

Both arms run the real training loop (``train_events``) on the same data, model, seed and batch
size; only ``TrainSpec.channels_last`` differs. Prints JSON with the training images per second
of each arm (best of ``--repeat``) and their ratio: > 1 means channels-last is faster.
"""

from __future__ import annotations

import argparse
import json

from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.train.events import RunFinished
from cnn_lab.engine.train.loop import train_events


def throughput(channels_last: bool, args: argparse.Namespace) -> tuple[float, str]:
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": args.limit},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "device": args.device,
                "channels_last": channels_last,
            },
        }
    )
    for event in train_events(spec):
        if isinstance(event, RunFinished):
            return float(event.summary["train_images_per_s"]), str(event.summary["device"])
    raise RuntimeError("training ended without a RunFinished event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    nhwc, nchw = [], []
    device = ""
    for _ in range(args.repeat):  # interleaved so drift in machine load hits both arms
        speed, device = throughput(True, args)
        nhwc.append(speed)
        nchw.append(throughput(False, args)[0])
    print(
        json.dumps(
            {
                "benchmark": "channels_last",
                "device": device,
                "channels_last_images_per_s": round(max(nhwc)),
                "baseline_nchw_images_per_s": round(max(nchw)),
                "ratio": round(max(nhwc) / max(nchw), 2),
                "batch_size": args.batch_size,
                "images": args.limit,
                "epochs": args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
