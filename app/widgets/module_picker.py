"""A dialog for the person's own module: which class, its keyword arguments, and the warning.

The classes come from the file's syntax (app/models/network_sources.py reads it with
``ast``), so nothing has run when the dialog opens. It says plainly that choosing the file
runs its code; when that code's hash is not trusted yet, OK reads "Run this file's code",
so agreeing is the button itself. The panel remembers the answer (engine/models/trust.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models.network_sources import module_warning, parse_kwargs
from cnn_lab.engine.errors import UserError

RUN_TEXT = "Run this file's code"
WARNING_STYLE = "background: #fff4e0; color: #5c3b00; border: 1px solid #e8c48a; padding: 6px;"
ERROR_STYLE = "color: #c62828;"


class ModulePicker(QDialog):
    """Class, keyword arguments (JSON), the warning, and OK or "Run this file's code"."""

    def __init__(
        self,
        path: str | Path,
        classes: list[str],
        *,
        trusted: bool,
        class_name: str = "",
        kwargs_text: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Your own module: {Path(path).name}")
        self.class_box = QComboBox()
        self.class_box.addItems(classes)
        if class_name in classes:
            self.class_box.setCurrentText(class_name)
        self.class_box.setToolTip(
            "The torch.nn.Module class to build. It receives the dataset's classes and "
            "channels through num_classes / in_channels (or their usual aliases) if it takes them."
        )
        self.kwargs = QLineEdit(kwargs_text)
        self.kwargs.setPlaceholderText('{"width": 32}')
        self.kwargs.setToolTip(
            "Keyword arguments for the class, as a JSON object; each can be swept like any "
            "other field (a wider or deeper net trains slower and may be more accurate)."
        )
        self.warning = QLabel(module_warning(path))
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if not trusted:
            self.ok_button.setText(RUN_TEXT)
        self.ok_button.setToolTip(
            "Build the network by running the file's code (asked once per file content)."
            if not trusted
            else "You already agreed to run this exact code."
        )
        form = QFormLayout()
        form.addRow("Class", self.class_box)
        form.addRow("Keyword arguments", self.kwargs)
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.values: tuple[str, dict[str, Any]] | None = None

    def accept(self) -> None:
        """Only valid JSON keyword arguments close the dialog; otherwise say what is wrong."""
        try:
            kwargs = parse_kwargs(self.kwargs.text())
        except UserError as exc:
            self.error.setText(str(exc))
            self.error.setVisible(True)
            return
        self.values = (self.class_box.currentText(), kwargs)
        super().accept()
