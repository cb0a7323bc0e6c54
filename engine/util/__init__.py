"""Small helpers every part of the engine shares, importing no other engine package.

- ``formatting``: numbers as a person reads them (bytes, counts, shapes).
- ``progress_eta``: the time left of a task and how progress is shown.
- ``safe_files``: writing files that must never be seen half-written.

``engine/errors.py`` stays at the engine's root: every package raises its errors.
"""
