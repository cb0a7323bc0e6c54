"""Jobs: a run's life from the queue to its stored result, and the child process it runs in.

- ``job``: the job's entry point (``run_job``, and ``child_main`` in a window's child process);
  ``cnn-lab train`` and sweep trials call the same function.
- ``queue``: the queue's policy (order, devices) and ``eta``: when queued jobs will finish, from
  past runs; ``resume``: the one rule for which runs may resume; ``retry``: the spec a run
  that ran out of memory is retried with.
- ``recording``: what each training event stores; ``batching``: how a child batches its events
  for the pipe; ``bottleneck``: the tracker that feeds monitor/diagnosis.py while a job runs;
  ``child_link``: a child's line to the window (training, tuner and sweep children all report
  through it).

Nothing here imports torch or Qt at import time.
"""
