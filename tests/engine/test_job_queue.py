"""The job queue's policy: order (priority, FIFO, manual moves), device matching, reservations."""

from __future__ import annotations

import pytest

from cnn_lab.engine.jobs.queue import JobQueue, QueueEntry

GPUS2 = ["cuda:0", "cuda:1", "cpu"]


def entry(run_id: int, device: str = "auto", priority: int = 0, **kw: object) -> QueueEntry:
    # enqueued_at follows the run id, so FIFO order is the id order.
    return QueueEntry(run_id, device, priority, enqueued_at=float(run_id), **kw)  # type: ignore[arg-type]


def ids(queue: JobQueue) -> list[int]:
    return [e.run_id for e in queue.entries()]


def started(queue: JobQueue, free: list[str]) -> dict[int, list[str]]:
    return {e.run_id: slots for e, slots in queue.plan(free)}


# ----------------------------------------------------------------------------- order


def test_priority_first_then_first_come_first_served() -> None:
    queue = JobQueue(["cpu"])
    for run_id, priority in [(1, 0), (2, 0), (3, 5), (4, 0), (5, 5), (6, -1)]:
        queue.add(entry(run_id, "cpu", priority))
    assert ids(queue) == [3, 5, 1, 2, 4, 6]
    assert queue.next_for("cpu").run_id == 3


def test_set_and_raise_priority_reorder() -> None:
    queue = JobQueue(["cpu"])
    for run_id in (1, 2, 3):
        queue.add(entry(run_id, "cpu"))
    queue.set_priority(3, 2)
    assert ids(queue) == [3, 1, 2]
    queue.raise_priority(2)
    assert ids(queue) == [3, 2, 1]
    queue.set_priority(3, 0)  # back among equals: placed by arrival, so behind the older run 1
    assert ids(queue) == [2, 1, 3]
    assert queue.get(2).priority == 1


def test_move_overrides_order_and_keeps_priorities_consistent() -> None:
    queue = JobQueue(["cpu"])
    queue.add(entry(1, "cpu", 3))
    for run_id in (2, 3, 4):
        queue.add(entry(run_id, "cpu"))
    queue.move(4, 1)  # within priority 0: a plain manual move
    assert ids(queue) == [1, 4, 2, 3]
    assert queue.get(4).priority == 0
    queue.move(3, 0)  # above a priority-3 run: it takes that priority
    assert ids(queue) == [3, 1, 4, 2]
    assert queue.get(3).priority == 3
    queue.move(1, 99)  # clamped to the end, below priority 0: it drops to 0
    assert ids(queue) == [3, 4, 2, 1]
    assert queue.get(1).priority == 0
    priorities = [e.priority for e in queue.entries()]
    assert priorities == sorted(priorities, reverse=True)


def test_cancel_removes_only_that_run() -> None:
    queue = JobQueue(["cpu"])
    for run_id in (1, 2, 3):
        queue.add(entry(run_id, "cpu"))
    assert queue.cancel(2).run_id == 2
    assert queue.cancel(2) is None
    assert ids(queue) == [1, 3] and 2 not in queue and len(queue) == 2


def test_a_run_is_queued_once_and_slots_are_checked() -> None:
    queue = JobQueue(["cpu"])
    queue.add(entry(1, "cpu"))
    with pytest.raises(ValueError, match="already queued"):
        queue.add(entry(1, "cpu"))
    with pytest.raises(KeyError):
        queue.move(7, 0)
    with pytest.raises(ValueError, match="not a job slot"):
        JobQueue(["gpu0"])
    with pytest.raises(ValueError, match="twice"):
        JobQueue(["cpu", "cpu"])


# ----------------------------------------------------------------------------- devices


def test_device_requests_go_to_their_slots() -> None:
    queue = JobQueue(GPUS2)
    queue.add(entry(1, "cuda:1"))
    queue.add(entry(2, "cpu"))
    queue.add(entry(3, "cuda"))
    queue.add(entry(4, "auto"))
    assert started(queue, GPUS2) == {1: ["cuda:1"], 2: ["cpu"], 3: ["cuda:0"]}
    # With only the CPU free, GPU runs wait: a GPU job never lands on the CPU.
    assert started(queue, ["cpu"]) == {2: ["cpu"]}
    assert queue.next_for("cpu").run_id == 2
    assert queue.next_for("cuda:0").run_id == 3
    assert queue.next_for("cuda:1").run_id == 1


def test_a_run_for_one_gpu_waits_for_that_gpu() -> None:
    queue = JobQueue(GPUS2)
    queue.add(entry(1, "cuda:1"))
    queue.add(entry(2, "cuda"))
    assert started(queue, ["cuda:0", "cpu"]) == {2: ["cuda:0"]}
    assert queue.waiting_for(queue.get(1)) == "waiting for cuda:1"
    assert queue.waiting_for(queue.get(2)) == "waiting for a GPU"


def test_without_gpus_auto_runs_on_the_cpu_and_mps_on_mps() -> None:
    queue = JobQueue(["mps", "cpu"])
    queue.add(entry(1, "auto"))
    queue.add(entry(2, "mps"))
    queue.add(entry(3, "cpu"))
    assert started(queue, ["mps", "cpu"]) == {1: ["mps"], 3: ["cpu"]}
    cpu_only = JobQueue(["cpu"])
    cpu_only.add(entry(1, "auto"))
    assert started(cpu_only, ["cpu"]) == {1: ["cpu"]}
    # Data parallel without CUDA runs gloo processes on the CPU, never on MPS.
    wide = entry(9, "auto", world_size=2)
    assert queue.slots_for(wide, ["mps", "cpu"]) == ["cpu"]
    assert cpu_only.waiting_for(cpu_only.get(1)) == "waiting for the CPU"


@pytest.mark.parametrize(
    ("slots", "device", "world_size", "words"),
    [
        (GPUS2, "cuda:3", 1, "cuda:3, but this machine has 2 GPU(s) (cuda:0 to cuda:1)"),
        (["cpu"], "cuda:0", 1, "has no CUDA GPU"),
        (["cpu"], "cuda", 1, "a CUDA GPU, but this machine has none"),
        (["cpu"], "mps", 1, "MPS device"),
        (GPUS2, "cuda", 4, "4 GPUs at once"),
        (["mps", "cpu"], "mps", 2, "not on Apple's MPS"),
        (["cuda:0"], "cpu", 1, "no CPU slot"),
    ],
)
def test_impossible_runs_get_a_sentence(
    slots: list[str], device: str, world_size: int, words: str
) -> None:
    queue = JobQueue(slots)
    why = queue.impossible(entry(1, device, world_size=world_size))
    assert why is not None and words in why
    assert why.endswith(".")


def test_possible_runs_are_not_impossible() -> None:
    queue = JobQueue(GPUS2)
    for device in ("auto", "cuda", "cuda:0", "cuda:1", "cpu"):
        assert queue.impossible(entry(1, device)) is None
    assert queue.impossible(entry(1, "cuda", world_size=2)) is None
    assert JobQueue(["cpu"]).impossible(entry(1, "cpu", world_size=4)) is None


# ----------------------------------------------------------------------------- data parallel


def test_data_parallel_needs_all_its_gpus_at_once() -> None:
    queue = JobQueue(GPUS2)
    wide = entry(1, "cuda", world_size=2)
    assert queue.slots_for(wide, ["cuda:0", "cuda:1"]) == ["cuda:0", "cuda:1"]
    assert queue.slots_for(wide, ["cuda:1", "cpu"]) is None
    queue.add(wide)
    assert started(queue, GPUS2) == {1: ["cuda:0", "cuda:1"]}
    assert queue.waiting_for(wide) == "waiting for 2 GPUs (cuda:0 to cuda:1)"


def test_a_waiting_data_parallel_run_holds_its_free_gpus() -> None:
    queue = JobQueue(["cuda:0", "cuda:1", "cuda:2", "cpu"])
    queue.add(entry(1, "cuda", world_size=2))
    queue.add(entry(2, "cuda"))
    queue.add(entry(3, "cpu"))
    # cuda:1 is busy: cuda:0 is held for run 1, run 2 takes the GPU the wide run does not need.
    assert started(queue, ["cuda:0", "cuda:2", "cpu"]) == {2: ["cuda:2"], 3: ["cpu"]}
    assert started(queue, ["cuda:0", "cpu"]) == {3: ["cpu"]}
    # A run moved ahead of it is served first.
    queue.move(2, 0)
    assert started(queue, ["cuda:0", "cpu"]) == {2: ["cuda:0"], 3: ["cpu"]}


def test_data_parallel_on_the_cpu_takes_the_cpu_slot() -> None:
    queue = JobQueue(["cpu"])
    queue.add(entry(1, "cpu", world_size=4))
    queue.add(entry(2, "auto", world_size=2))
    assert started(queue, ["cpu"]) == {1: ["cpu"]}
    queue.cancel(1)
    assert started(queue, ["cpu"]) == {2: ["cpu"]}


def test_plan_does_not_change_the_queue() -> None:
    queue = JobQueue(GPUS2)
    queue.add(entry(1, "cpu"))
    queue.plan(GPUS2)
    assert ids(queue) == [1]
