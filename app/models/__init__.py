"""Plain (non-Qt) form models under the panels: their state, rules and the text they show.

A panel is a thin view: it reads a model, writes what the person typed into it, and shows
what the model says. The rules live here (or in the engine, where the rule is the engine's),
so they are tested without a window, and the CLI can share them. Nothing here imports Qt
(an import-linter contract in pyproject.toml holds that).
"""
