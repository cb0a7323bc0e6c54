"""The PDF report: the planned pages (pdf_layout.py) drawn with fpdf2, pure Python.

Charts are drawn from the same geometry the HTML's SVG comes from (charts.py), with fpdf's
own lines, boxes and text, so the PDF needs no SVG support and no fonts beyond the one it
embeds. That font is DejaVu Sans (or Arial) when the system has it, for names in any
script; without one the PDF falls back to Helvetica and shows characters outside Latin-1
as "?" rather than failing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF

from cnn_lab.engine.report import charts
from cnn_lab.engine.report.data import RunReportData, SweepReportData, Table
from cnn_lab.engine.report.pdf_layout import (
    CONTENT_MM,
    ROW_MM,
    THUMBS_PER_STRIP,
    FactRow,
    FigureBlock,
    Heading,
    Page,
    TableHeader,
    TableRow,
    TextLine,
    ThumbStrip,
    Unit,
    plan_run,
    plan_sweep,
)

MARGIN_MM = 14.0
TITLE_MM = 14.0
TOP_MM = 12.0
"""Where the section title's baseline area starts."""
ROWS_TOP_MM = TOP_MM + TITLE_MM + ROW_MM
"""The first row, below the title and the slot for a continued table's header."""
MM_PER_PT = 25.4 / 72

FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/usr/local/share/fonts/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("/Library/Fonts/Arial Unicode.ttf", "Arial Unicode.ttf"),
    ("/System/Library/Fonts/Supplemental/Arial.ttf", "Arial Bold.ttf"),
    ("C:/Windows/Fonts/arial.ttf", "arialbd.ttf"),
)
_LATIN1 = str.maketrans({"—": "-", "–": "-", "…": "...", "→": "->", "×": "x", "•": "*", "±": "+/-"})


def _font_files() -> tuple[Path, Path] | None:
    for regular, bold in FONT_CANDIDATES:
        path = Path(regular)
        if path.is_file():
            bold_path = path.with_name(bold)
            return path, bold_path if bold_path.is_file() else path
    return None


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


class _Document(FPDF):
    """An A4 page with a footer; ``say`` makes any text drawable in the chosen font."""

    def __init__(self, title: str, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_auto_page_break(False)
        self.set_margins(MARGIN_MM, TOP_MM, MARGIN_MM)
        self.set_title(title)
        self.set_creator(footer)
        self._footer_text = footer
        files = _font_files()
        self.unicode = files is not None
        if files is not None:
            self.add_font("Body", "", str(files[0]))
            self.add_font("Body", "B", str(files[1]))
            self.family = "Body"
        else:
            self.family = "Helvetica"

    def say(self, text: str) -> str:
        if self.unicode:
            return text
        return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def fit(self, text: str, width: float) -> str:
        """``text`` shortened with an ellipsis until it fits ``width`` mm."""
        shown = self.say(text)
        if self.get_string_width(shown) <= width:
            return shown
        ellipsis = self.say("…")
        low, high = 0, len(shown)
        while low < high:
            middle = (low + high + 1) // 2
            if self.get_string_width(shown[:middle] + ellipsis) <= width:
                low = middle
            else:
                high = middle - 1
        return shown[:low] + ellipsis

    def footer(self) -> None:
        self.set_y(-10)
        self.font(7.5)
        self.set_text_color(130, 130, 130)
        shown = self.say(f"{self._footer_text} · page {self.page_no()} of {{nb}}")
        self.cell(0, 5, shown, align="C")


# ----------------------------------------------------------------------------- drawing


def _widths(table: Table, total: float) -> list[float]:
    """Column widths by content length (capped), so short numbers do not get half the page."""
    lengths = [len(c) for c in table.columns]
    for row in table.rows[:200]:
        lengths = [max(n, len(cell)) for n, cell in zip(lengths, row, strict=False)]
    weights = [min(48, max(4, n)) + 2 for n in lengths]
    return [total * w / sum(weights) for w in weights]


def _draw_row(
    pdf: _Document, table: Table, cells: Sequence[str], y: float, header: bool = False
) -> None:
    widths = _widths(table, CONTENT_MM)
    size = 8.0 if len(widths) <= 6 else 7.0
    pdf.font(size, bold=header)
    if header:
        pdf.set_fill_color(238, 241, 245)
        pdf.rect(MARGIN_MM, y, CONTENT_MM, ROW_MM, style="F")
    pdf.set_draw_color(225, 225, 225)
    pdf.line(MARGIN_MM, y + ROW_MM, MARGIN_MM + CONTENT_MM, y + ROW_MM)
    pdf.set_text_color(34, 34, 34)
    x = MARGIN_MM
    for index, (cell, width) in enumerate(zip(cells, widths, strict=False)):
        pdf.set_xy(x, y)
        align = "R" if table.is_numeric(index) else "L"
        pdf.cell(width, ROW_MM, pdf.fit(cell, width - 2), align=align)
        x += width


def _draw_unit(pdf: _Document, unit: Unit, y: float) -> None:
    _DRAW[type(unit)](pdf, unit, y)


def _heading(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, Heading)
    pdf.font(10.5, bold=True)
    pdf.set_text_color(31, 94, 170)
    pdf.set_xy(MARGIN_MM, y)
    pdf.cell(CONTENT_MM, ROW_MM, pdf.fit(unit.text, CONTENT_MM))


def _text(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, TextLine)
    pdf.font(unit.size, bold=unit.bold)
    pdf.set_text_color(34, 34, 34)
    pdf.set_xy(MARGIN_MM, y)
    pdf.cell(CONTENT_MM, ROW_MM * unit.rows, pdf.fit(unit.text, CONTENT_MM))


def _fact(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, FactRow)
    label_w = CONTENT_MM * 0.36
    pdf.font(8.5)
    pdf.set_text_color(110, 110, 110)
    pdf.set_xy(MARGIN_MM, y)
    pdf.cell(label_w, ROW_MM, pdf.fit(unit.fact.label, label_w - 2))
    pdf.set_text_color(34, 34, 34)
    pdf.cell(CONTENT_MM - label_w, ROW_MM, pdf.fit(unit.fact.value, CONTENT_MM - label_w))
    pdf.set_draw_color(238, 238, 238)
    pdf.line(MARGIN_MM, y + ROW_MM, MARGIN_MM + CONTENT_MM, y + ROW_MM)


def _table_header(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, TableHeader)
    _draw_row(pdf, unit.table, unit.table.columns, y, header=True)


def _table_row(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, TableRow)
    _draw_row(pdf, unit.table, unit.cells, y)


def _figure(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, FigureBlock)
    fig = unit.figure
    box_h = unit.rows * ROW_MM
    scale = min(CONTENT_MM / fig.width, box_h / fig.height)
    x0 = MARGIN_MM + (CONTENT_MM - fig.width * scale) / 2
    for item in fig.items:
        _ITEMS[type(item)](pdf, item, x0, y, scale)
    pdf.set_dash_pattern()


def _item_line(pdf: _Document, item: charts.Item, x0: float, y0: float, s: float) -> None:
    assert isinstance(item, charts.Line)
    pdf.set_draw_color(*_hex(item.stroke))
    pdf.set_line_width(max(0.1, item.width * s))
    pdf.set_dash_pattern(dash=1.2, gap=0.9) if item.dash else pdf.set_dash_pattern()
    pdf.line(x0 + item.x1 * s, y0 + item.y1 * s, x0 + item.x2 * s, y0 + item.y2 * s)


def _item_path(pdf: _Document, item: charts.Item, x0: float, y0: float, s: float) -> None:
    assert isinstance(item, charts.Path)
    pdf.set_draw_color(*_hex(item.stroke))
    pdf.set_line_width(max(0.1, item.width * s))
    pdf.set_dash_pattern(dash=1.5, gap=1.2) if item.dash else pdf.set_dash_pattern()
    pdf.polyline([(x0 + x * s, y0 + y * s) for x, y in item.points], style="D")


def _item_box(pdf: _Document, item: charts.Item, x0: float, y0: float, s: float) -> None:
    assert isinstance(item, charts.Box)
    pdf.set_dash_pattern()
    pdf.set_fill_color(*_hex(item.fill))
    style = "F"
    if item.stroke:
        pdf.set_draw_color(*_hex(item.stroke))
        pdf.set_line_width(0.1)
        style = "DF"
    pdf.rect(x0 + item.x * s, y0 + item.y * s, item.w * s, item.h * s, style=style)


def _item_label(pdf: _Document, item: charts.Item, x0: float, y0: float, s: float) -> None:
    assert isinstance(item, charts.Label)
    pdf.font(max(4.0, item.size * s / MM_PER_PT), bold=item.bold)
    pdf.set_text_color(*_hex(item.fill))
    shown = pdf.say(item.text)
    width = pdf.get_string_width(shown)
    shift = {"start": 0.0, "middle": width / 2, "end": width}[item.anchor]
    pdf.text(x0 + item.x * s - shift, y0 + item.y * s, shown)


def _thumbs(pdf: _Document, unit: Unit, y: float) -> None:
    assert isinstance(unit, ThumbStrip)
    cell = CONTENT_MM / THUMBS_PER_STRIP
    side = unit.rows * ROW_MM - 9
    for index, thumb in enumerate(unit.thumbs):
        x = MARGIN_MM + index * cell
        pdf.image(io.BytesIO(thumb.png), x=x + (cell - side) / 2, y=y + 1, w=side, h=side)
        pdf.font(6.5)
        pdf.set_text_color(60, 60, 60)
        pdf.set_xy(x, y + side + 1.5)
        pdf.cell(cell, 3.5, pdf.fit(thumb.caption, cell - 1), align="C")
        pdf.set_xy(x, y + side + 4.5)
        pdf.set_text_color(130, 130, 130)
        pdf.cell(cell, 3.5, pdf.fit(thumb.detail, cell - 1), align="C")


_DRAW = {
    Heading: _heading,
    TextLine: _text,
    FactRow: _fact,
    TableHeader: _table_header,
    TableRow: _table_row,
    FigureBlock: _figure,
    ThumbStrip: _thumbs,
}
_ITEMS = {
    charts.Line: _item_line,
    charts.Path: _item_path,
    charts.Box: _item_box,
    charts.Label: _item_label,
}


def render_pages(pages: Sequence[Page], title: str, footer: str) -> bytes:
    """Draw ``pages`` (one PDF page each) and return the PDF's bytes."""
    pdf = _Document(title, footer)
    for page in pages:
        pdf.add_page()
        pdf.font(14, bold=True)
        pdf.set_text_color(34, 34, 34)
        pdf.set_xy(MARGIN_MM, TOP_MM)
        pdf.cell(CONTENT_MM * 0.6, 9, pdf.fit(page.section, CONTENT_MM * 0.6))
        pdf.font(8)
        pdf.set_text_color(130, 130, 130)
        pdf.cell(CONTENT_MM * 0.4, 9, pdf.fit(title, CONTENT_MM * 0.4), align="R")
        pdf.set_draw_color(31, 94, 170)
        pdf.set_line_width(0.6)
        pdf.line(MARGIN_MM, TOP_MM + 10, MARGIN_MM + CONTENT_MM, TOP_MM + 10)
        pdf.set_line_width(0.2)
        if page.continued is not None:
            _draw_row(pdf, page.continued, page.continued.columns, ROWS_TOP_MM - ROW_MM, True)
        y = ROWS_TOP_MM
        for unit in page.units:
            _draw_unit(pdf, unit, y)
            y += unit.rows * ROW_MM
    return bytes(pdf.output())


def render_run_pdf(data: RunReportData) -> bytes:
    return render_pages(plan_run(data), data.title, f"cnn-lab report · {data.generated}")


def render_sweep_pdf(data: SweepReportData) -> bytes:
    return render_pages(plan_sweep(data), data.title, f"cnn-lab report · {data.generated}")


__all__ = ["render_pages", "render_run_pdf", "render_sweep_pdf"]
