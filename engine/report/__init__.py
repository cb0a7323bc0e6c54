"""Reports a person can send: a run's or a sweep's HTML, PDF, CSV and JSON.

``gather_run``/``gather_sweep`` read the store once into frozen report data; the HTML and
PDF writers only lay that data out, and the CSV and JSON writers stream every stored point
straight from the database. ``write_report`` picks the writer by format (``FORMATS``).
Importing this package loads neither torch nor Qt (nor Jinja2, fpdf2 or Optuna); torch
loads only to summarise an architecture.
"""

from cnn_lab.engine.report.formats import FORMATS, Options, Written, format_for, write_report

__all__ = ["FORMATS", "Options", "Written", "format_for", "write_report"]
