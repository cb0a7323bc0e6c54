"""The live architecture summary (built and traced on the meta device) against the usual way.

The usual way, as summary tools such as torchinfo do it: build the network with real
weights on the CPU and run a real forward pass with hooks (here under torch's FlopCounterMode
so both arms count the same MACs). cnn-lab builds on the meta device, where tensors have
shapes but no data, so nothing is initialised or computed. Prints JSON with the seconds per
summary of both arms for a few presets at 224 px, and the ratio (> 1: cnn-lab is faster).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.architecture_summary import summarize_architecture
from cnn_lab.engine.specs import ArchitectureSpec


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def baseline(spec: ArchitectureSpec, shape: InputShape) -> int:
    model = build_model(spec, shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, shape.channels, shape.height, shape.width))
    return counter.get_total_flops() // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", default="resnet50,efficientnet_b0,vgg,resnet9")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = InputShape(3, args.size, args.size, 1000)
    rows = {}
    for name in args.presets.split(","):
        spec = ArchitectureSpec(preset=name)
        ours = summarize_architecture(spec, shape)  # warm-up, and the MACs to compare
        assert ours.macs == baseline(spec, shape), name
        meta_s = _best(lambda: summarize_architecture(spec, shape), args.repeat)  # noqa: B023
        real_s = _best(lambda: baseline(spec, shape), args.repeat)  # noqa: B023
        rows[name] = {
            "meta_summary_s": round(meta_s, 4),
            "baseline_cpu_forward_s": round(real_s, 4),
            "ratio": round(real_s / meta_s, 1),
        }
    total_meta = sum(r["meta_summary_s"] for r in rows.values())
    total_real = sum(r["baseline_cpu_forward_s"] for r in rows.values())
    print(
        json.dumps(
            {
                "benchmark": "model_summary",
                "input": f"3x{args.size}x{args.size}",
                "threads": torch.get_num_threads(),
                "presets": rows,
                "ratio": round(total_real / total_meta, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
