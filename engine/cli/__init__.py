"""cnn-lab's headless commands, one module per command group.

``main`` builds the parser from the groups (``train`` and ``resume``; ``data``; ``model``;
``tune``; ``sweep`` and ``sweep-worker``; ``evaluate`` and ``predict``; ``report``; ``runs``)
and runs a command; ``common`` holds what the groups share (the parser class, exit codes,
output helpers, the data and run option groups). The groups import ``common`` and never
each other. ``python -m cnn_lab.engine.cli`` runs ``main``.
"""
