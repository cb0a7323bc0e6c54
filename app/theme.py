"""Light and dark themes: the Fusion style with a palette, and pyqtgraph's colours to match.

A registry of palettes, so a new theme is one function. "system" puts back the style and
palette the application started with (the desktop's). The charts draw on a transparent
background (``setBackground(None)``), so they follow the palette's window colour; their axis
and title text follow the palette's text colour, set here for charts already drawn and made
the default for charts made later.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

SYSTEM = "system"

Role = QPalette.ColorRole
Group = QPalette.ColorGroup


def _palette(colours: dict[Role, str], disabled_text: str) -> QPalette:
    palette = QPalette()
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (Role.Text, Role.ButtonText, Role.WindowText):
        palette.setColor(Group.Disabled, role, QColor(disabled_text))
    return palette


def light_palette() -> QPalette:
    return _palette(
        {
            Role.Window: "#f3f3f3",
            Role.WindowText: "#1e1e1e",
            Role.Base: "#ffffff",
            Role.AlternateBase: "#f0f0f0",
            Role.ToolTipBase: "#ffffdc",
            Role.ToolTipText: "#1e1e1e",
            Role.PlaceholderText: "#808080",
            Role.Text: "#1e1e1e",
            Role.Button: "#ececec",
            Role.ButtonText: "#1e1e1e",
            Role.BrightText: "#d00000",
            Role.Light: "#ffffff",
            Role.Midlight: "#e3e3e3",
            Role.Mid: "#b8b8b8",
            Role.Dark: "#a0a0a0",
            Role.Shadow: "#6e6e6e",
            Role.Highlight: "#2e86de",
            Role.HighlightedText: "#ffffff",
            Role.Link: "#1a6fc4",
        },
        disabled_text="#a0a0a0",
    )


def dark_palette() -> QPalette:
    return _palette(
        {
            Role.Window: "#2b2b2b",
            Role.WindowText: "#e6e6e6",
            Role.Base: "#1f1f1f",
            Role.AlternateBase: "#2a2a2a",
            Role.ToolTipBase: "#3a3a3a",
            Role.ToolTipText: "#f0f0f0",
            Role.PlaceholderText: "#8a8a8a",
            Role.Text: "#e6e6e6",
            Role.Button: "#353535",
            Role.ButtonText: "#e6e6e6",
            Role.BrightText: "#ff6b6b",
            Role.Light: "#4a4a4a",
            Role.Midlight: "#3c3c3c",
            Role.Mid: "#2f2f2f",
            Role.Dark: "#1a1a1a",
            Role.Shadow: "#000000",
            Role.Highlight: "#3d8fd9",
            Role.HighlightedText: "#ffffff",
            Role.Link: "#6cb4ff",
        },
        disabled_text="#6f6f6f",
    )


THEMES: dict[str, Callable[[], QPalette] | None] = {
    SYSTEM: None,
    "light": light_palette,
    "dark": dark_palette,
}
"""Theme name to palette factory; None means the desktop's own."""

THEME_LABELS = {SYSTEM: "System", "light": "Light", "dark": "Dark"}

_original: tuple[str, QPalette] | None = None


def apply_theme(name: str, app: QApplication | None = None) -> str:
    """Apply theme ``name`` (an unknown name falls back to "system"); returns the name used."""
    global _original
    app = app or QApplication.instance()
    if not isinstance(app, QApplication):
        return SYSTEM
    if _original is None:  # what the desktop gave us, for going back to "system"
        _original = (app.style().name(), QPalette(app.palette()))
    factory = THEMES.get(name)
    if name not in THEMES:
        name = SYSTEM
    if factory is None:
        app.setStyle(QStyleFactory.create(_original[0]) or _original[0])
        app.setPalette(_original[1])
    else:
        app.setStyle("Fusion")  # the one style that draws every palette role faithfully
        app.setPalette(factory())
    _style_charts(app.palette())
    _repolish_style_sheets(app)
    return name


def _repolish_style_sheets(app: QApplication) -> None:
    """Style sheets that say ``palette(base)`` resolve it when applied: apply them again."""
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet and "palette(" in sheet:
            widget.setStyleSheet("")
            widget.setStyleSheet(sheet)


def _style_charts(palette: QPalette) -> None:
    """Axis and title text in the palette's text colour, for charts now and to come."""
    import pyqtgraph as pg

    text = palette.color(Role.WindowText)
    muted = QColor(text)
    muted.setAlphaF(0.75)
    pg.setConfigOption("foreground", muted)
    for plot in QApplication.instance().allWidgets():
        if isinstance(plot, pg.PlotWidget):
            item = plot.getPlotItem()
            for name in ("left", "bottom", "right", "top"):
                axis = item.getAxis(name)
                axis.setPen(muted)
                axis.setTextPen(muted)
            item.titleLabel.setText(item.titleLabel.text, color=muted)
            legend = item.legend
            if legend is not None:  # a translucent backing in the new window colour
                backing = QColor(palette.color(Role.Window))
                backing.setAlpha(210)
                legend.setBrush(pg.mkBrush(backing))
                legend.setLabelTextColor(muted)
                for _sample, label in legend.items:
                    label.setText(label.text)


def is_dark(palette: QPalette) -> bool:
    return palette.color(Role.Window).lightness() < 128
