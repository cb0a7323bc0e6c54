"""Tuners that answer "what should I set?" by measuring the person's own model, data and device.

``probe`` is the shared harness (a few real optimizer steps, timed); ``lr_finder`` is the
learning-rate range test, ``batch_size`` the largest batch that fits, ``speed`` the speed
advisor, ``loader_bench`` the data loader alone (``cnn-lab data bench``). Each returns a plain
result with ``to_dict()`` for ``cnn-lab tune ... --json`` and the Tune panel.
"""
