"""Data-parallel training with torch.distributed (DDP): one process per GPU, or gloo on CPUs.

Every process runs the same training loop. The loader gives rank r every world-th image of
each global batch (engine/data/loader.py), DDP averages the gradients, and only rank 0 writes
checkpoints, weights and the run's record. The same code serves three launches:

* one process, no torch.distributed at all (world size 1, the default);
* the app (or ``cnn-lab train``) starting ``world_size`` processes on this machine
  (``spawn_workers``), with NCCL on GPUs and gloo on the CPU;
* ``torchrun`` on one or many machines, which sets RANK, WORLD_SIZE, LOCAL_RANK and
  MASTER_ADDR/PORT (``DistContext.from_env``).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    """The device this process trains on; None lets the spec decide (single process)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: DDP around ``model`` when data-parallel, else ``model``."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = self.device is not None and self.device.type == "cuda"
        if on_gpu:
            # Batch statistics over the global batch, as one process would compute them.
            # In place: the parameters stay the same objects, so the optimizer and EMA built
            # on ``model`` still hold them. (PyTorch's SyncBatchNorm needs GPUs; gloo CPU
            # processes normalise over their own share of the batch.)
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[self.device.index] if on_gpu else None)

    @classmethod
    def from_env(cls, device_kind: str) -> DistContext:
        """The context torchrun describes in the environment (world size 1 without it)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return cls(rank, world, local, _device_for(device_kind, local))


def _device_for(kind: str, local_rank: int) -> torch.device:
    if kind.startswith("cuda") or (kind == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_process_group(ctx: DistContext, init_method: str | None = None) -> None:
    """Join the group: NCCL between GPUs, gloo between CPU processes."""
    import torch.distributed as dist

    if not ctx.active or dist.is_initialized():
        return
    backend = "nccl" if ctx.device is not None and ctx.device.type == "cuda" else "gloo"
    if ctx.device is not None and ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
    # Minutes, not torch's default half hour: a rank that died should fail the run soon.
    kwargs: dict[str, Any] = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "timeout": datetime.timedelta(minutes=5),
    }
    if init_method is not None:
        kwargs["init_method"] = init_method
    dist.init_process_group(backend, **kwargs)


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def agree(ctx: DistContext, flag: bool) -> bool:
    """True on every rank if it is True on any: a stop or a failure seen by one rank must end
    the loop on all of them, or the others would wait forever in the next all-reduce."""
    return agree_flags(ctx, flag)[0]


def agree_flags(ctx: DistContext, *flags: bool) -> tuple[bool, ...]:
    """Each flag True on every rank if it is True on any, in one all-reduce (one host read)."""
    if not ctx.active:
        return flags
    import torch.distributed as dist

    values = torch.tensor([1.0 if f else 0.0 for f in flags], device=ctx.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(v > 0 for v in values.tolist())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_main(spec_json: str, rank: int, world: int, init_method: str, kind: str) -> None:
    """A data-parallel rank other than 0, started by ``spawn_workers``: train, report nothing."""
    from cnn_lab.engine.specs import RunSpec

    ctx = DistContext(rank, world, rank, _device_for(kind, rank))
    init_process_group(ctx, init_method)
    try:
        run_rank(RunSpec.from_json(spec_json), ctx)
    finally:
        destroy_process_group()


def run_rank(spec: Any, ctx: DistContext) -> None:
    """Train as a non-zero rank: the same loop, its events dropped (rank 0 records the run)."""
    from cnn_lab.engine.train.loop import train_events

    if spec.architecture.weights and weights_failed(ctx, _machine_download(spec, ctx)):
        return  # rank 0 ends the run with the download's sentence
    for _ in train_events(spec, dist=ctx):
        pass


def weights_failed(ctx: DistContext, failed: bool) -> bool:
    """Wait until every rank is past its published-weights download; True if any failed.

    Published weights are downloaded before building (building never downloads) by rank 0
    in the job, and by the first process of every other machine (``_machine_download``);
    the rest of the ranks would otherwise build at once and find no file. Every rank calls
    this once, before training: one all-reduce, so it waits at most the process group's
    timeout (``init_process_group``) for the slowest download.
    """
    return agree(ctx, failed)


def _machine_download(spec: Any, ctx: DistContext) -> bool:
    """On a machine's first process (LOCAL_RANK 0, not rank 0): download the weights into
    this machine's cache; True if that failed (the reason goes to the log)."""
    if ctx.local_rank != 0:
        return False
    from cnn_lab.engine.models.published_weights import ensure_weights

    try:
        ensure_weights(spec.architecture)
    except Exception as exc:  # every rank must reach the agreement, whatever went wrong
        logging.getLogger(__name__).error("rank %d: %s", ctx.rank, exc)
        return True
    return False


def spawn_workers(spec_json: str, world: int, kind: str) -> tuple[DistContext, list[Any], str]:
    """Start ranks 1..world-1 as spawned processes; returns rank 0's context, the processes
    and the rendezvous address (rank 0 joins the group with it)."""
    import multiprocessing as mp

    init_method = f"tcp://127.0.0.1:{free_port()}"
    ctx = mp.get_context("spawn")
    processes = []
    for rank in range(1, world):
        process = ctx.Process(
            target=worker_main,
            args=(spec_json, rank, world, init_method, kind),
            name=f"cnn-lab-rank-{rank}",
            daemon=True,
        )
        process.start()
        processes.append(process)
    return DistContext(0, world, 0, _device_for(kind, 0)), processes, init_method
