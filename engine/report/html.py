"""The HTML report: one self-contained file, safe to open and to send.

Rendered with Jinja2 from resources/report/ with autoescaping on, so every name, tag, class
label and path from the database is text, never markup. The only markup that is not escaped
is what this package built itself: the charts' SVG (built with its text escaped, charts.py)
and images as base64 ``data:`` URIs. The CSS is inlined and nothing is fetched: no scripts,
no web fonts, no external links, so the file shows the same offline, years later.
"""

from __future__ import annotations

import base64
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from cnn_lab.engine.report import charts
from cnn_lab.engine.report.data import RunReportData, SweepReportData

TEMPLATES = ("cnn_lab.resources", "report")
"""Where the templates live: a folder of the cnn_lab.resources package (package data)."""


def _load(name: str) -> str | None:
    """A template's text from the installed package (works from a wheel or a frozen app)."""
    package, folder = TEMPLATES
    node = resources.files(package).joinpath(folder, name)
    return node.read_text(encoding="utf-8") if node.is_file() else None


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(
            loader=jinja2.FunctionLoader(_load),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["data_uri"] = _data_uri
        _ENV = env
    return _ENV


def _svg(figure: charts.Figure) -> Markup:
    return Markup(charts.to_svg(figure))  # built with every text escaped


def render_run_html(data: RunReportData) -> str:
    e = data.evaluation
    context: dict[str, Any] = {
        "title": data.title,
        "generated": data.generated,
        "r": data,
        "curves": [_svg(charts.line_chart(c)) for c in data.curves],
        "system": [_svg(charts.line_chart(c)) for c in data.system],
        "confusion": _svg(charts.confusion_heatmap(e.classes, e.confusion))
        if e.evaluated and e.confusion
        else "",
    }
    return environment().get_template("run.html.j2").render(context)


def render_sweep_html(data: SweepReportData) -> str:
    context: dict[str, Any] = {
        "title": data.title,
        "generated": data.generated,
        "s": data,
        "history": _svg(charts.line_chart(data.history)) if data.history else "",
        "parallel": _svg(charts.parallel_coordinates(data.axes, data.colour)),
        "importance": _svg(charts.bar_chart("Share of the value's variance", data.importance))
        if data.importance
        else "",
    }
    return environment().get_template("sweep.html.j2").render(context)


__all__ = ["render_run_html", "render_sweep_html"]
