"""The Architecture panel's weights and network sources: the work behind the weights row,
the timm picker and the module picker, kept out of the panel so it stays a thin view.

Everything slow runs in a Task (app/bridge/task.py): the weights catalogue (it imports
torchvision or timm), a download (progress in bytes, time left, Cancel), a timm search. Only
a finished download pushes its edit: a cancelled one leaves the spec and the combo as they
were, a failed one says why in one sentence and offers the file picker. Choosing weights
already in the cache is one undoable edit with no network at all.

Dialogs are opened with ``open()`` (window-modal, not a nested event loop), and are kept as
``timm_dialog`` / ``module_dialog`` until the next one, so tests and the tour can drive them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnn_lab.app.bridge.task import Task, run_task
from cnn_lab.app.models import network_sources, weights_choice
from cnn_lab.app.models.architecture_form import ArchitectureForm
from cnn_lab.app.widgets.module_picker import ModulePicker
from cnn_lab.app.widgets.timm_picker import LIMIT, Deliver, TimmPicker
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import ArchitectureSpec
from cnn_lab.engine.specs.architecture import TIMM, ModuleSource

if TYPE_CHECKING:
    from cnn_lab.app.panels.architecture_panel import ArchitecturePanel


def _download(spec: ArchitectureSpec, progress: Any, should_stop: Any) -> Path:
    """``ensure_weights`` on a worker; a failure keeps its sentence and drops the hint (the
    window offers the file picker itself)."""
    from cnn_lab.engine.models.published_weights import ensure_weights

    try:
        return ensure_weights(spec, progress, should_stop)
    except UserError as exc:
        raise UserError(exc.message) from None


def _search(text: str, _progress: Any, _should_stop: Any) -> list[Any]:
    from cnn_lab.engine.models.timm_source import search_timm

    return search_timm(text, LIMIT)


class NetworkSources(QObject):
    """Wires the bar's weights row and source entries to tasks, dialogs and form edits."""

    def __init__(self, panel: ArchitecturePanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.row = panel.bar.weights
        self.download: Task | None = None
        self.timm_dialog: TimmPicker | None = None
        self.module_dialog: ModulePicker | None = None
        self._catalogue_key: tuple[str, str] | None = None
        self._pending: ArchitectureSpec | None = None
        panel.live.busy.connect(lambda busy: None if busy else self._start_catalogue())
        self.row.published_chosen.connect(self.choose_published)
        self.row.file_chosen.connect(panel.set_pretrained)
        self.row.cancel_requested.connect(self.cancel_download)
        panel.bar.source_requested.connect(
            lambda kind: self.open_timm() if kind == TIMM else self.open_module()
        )

    @property
    def form(self) -> ArchitectureForm:
        return self.panel.form

    # ----------------------------------------------------------------- catalogue

    def refresh(self, spec: ArchitectureSpec, force: bool = False) -> None:
        """Load the network's published weights (off the GUI thread) when it changed.

        It waits for the live summary to be idle: both may import torchvision (or timm) for
        the first time, and two threads importing one package at once can deadlock Python's
        import locks. The summary of the same network has imported it by then.
        """
        key = weights_choice.network_key(spec)
        if key == self._catalogue_key and not force:
            return
        self._catalogue_key, self._pending = key, spec
        self._start_catalogue()

    def _start_catalogue(self) -> None:
        spec = self._pending
        if spec is None or self.panel.live.is_busy:
            return
        self._pending = None
        run_task(
            partial(lambda s, *_: weights_choice.catalogue(s), spec),
            parent=self,
            on_done=partial(self._catalogue_ready, weights_choice.network_key(spec)),
            name="weights catalogue",
        )

    def _catalogue_ready(self, key: tuple[str, str], published: tuple[Any, ...]) -> None:
        if key == weights_choice.network_key(self.form.spec):
            self.row.set_catalogue(published)

    # ----------------------------------------------------------------- published weights

    def choose_published(self, name: str) -> None:
        """Cached: one edit now. Not cached: download first; only success pushes the edit."""
        edit = self.form.set_weights(name)
        if edit is None or self.download is not None:
            self.row.show_spec(self.form.spec)
            return
        line = self.row.entry(name)
        if line is not None and line.cached:
            self.panel._push(edit)
            return
        task = Task(partial(_download, edit.after), name="weights download", parent=self)
        self.download = task
        key = weights_choice.network_key(edit.after)
        task.connect_outcomes(
            progress=self.row.show_progress,
            finished=lambda _path: self._downloaded(key, name),
            failed=self._download_failed,
            cancelled=self._download_ended,
        )
        self.row.start_download(name)
        task.start()

    def cancel_download(self) -> None:
        if self.download is not None:
            self.row.cancel_button.setEnabled(False)
            self.download.cancel()

    def _download_ended(self) -> None:
        self.download = None
        self.row.end_download()  # shows the spec's weights again: nothing changed

    def _downloaded(self, key: tuple[str, str], name: str) -> None:
        self._download_ended()
        if key == weights_choice.network_key(self.form.spec):  # still the same network
            self.panel._push(self.form.set_weights(name))
        self.refresh(self.form.spec, force=True)  # it now reads "downloaded"

    def _download_failed(self, sentence: str) -> None:
        self._download_ended()
        self.row.offer_file(sentence)

    # ----------------------------------------------------------------- timm

    def open_timm(self) -> None:
        """The timm picker; choosing a model is one edit (preset "timm")."""
        self.panel.bar.show_spec(self.form.spec, self.form.preset())  # the combo goes back
        if not network_sources.timm_available():
            QMessageBox.information(self.panel, "timm", network_sources.TIMM_INSTALL)
            return
        dialog = TimmPicker(self._search_timm, self.form.spec.timm_model, self.panel)
        dialog.accepted.connect(lambda: self._timm_chosen(dialog.chosen()))
        self._replace("timm_dialog", dialog)
        dialog.open()

    def _search_timm(self, text: str, number: int, deliver: Deliver) -> None:
        dialog = self.timm_dialog
        run_task(
            partial(_search, text),
            parent=dialog if dialog is not None else self,
            on_done=lambda found: deliver(number, found),
            on_error=lambda sentence: deliver(number, sentence),
            name="timm search",
        )

    def _timm_chosen(self, name: str) -> None:
        if name:
            self.panel._push(self.form.choose_timm(name))

    # ----------------------------------------------------------------- your own module

    def open_module(self) -> None:
        """A .py file, then its class and keyword arguments; running its code is asked once
        per file content (its sha256), and remembered."""
        from cnn_lab.engine.models.module_source import read_module_source
        from cnn_lab.engine.models.trust import is_trusted

        self.panel.bar.show_spec(self.form.spec, self.form.preset())
        path, _ = QFileDialog.getOpenFileName(
            self.panel, "Your own module", "", network_sources.MODULE_FILES
        )
        if not path:
            return
        try:
            source = read_module_source(path, "Net")
            classes = network_sources.module_classes(source.code, Path(path).name)
        except UserError as exc:
            QMessageBox.warning(self.panel, "Cannot use this file", str(exc))
            return
        current = self.form.spec.module
        same = current is not None and current.path == source.path
        dialog = ModulePicker(
            path,
            classes,
            trusted=is_trusted(source.sha256),
            class_name=current.class_name if same and current else "",
            kwargs_text=_json(current.kwargs) if same and current and current.kwargs else "",
            parent=self.panel,
        )
        dialog.accepted.connect(lambda: self._module_chosen(source, dialog))
        self._replace("module_dialog", dialog)
        dialog.open()

    def _module_chosen(self, read: ModuleSource, dialog: ModulePicker) -> None:
        from cnn_lab.engine.models.trust import is_trusted, trust

        if dialog.values is None:
            return
        class_name, kwargs = dialog.values
        source = ModuleSource.from_dict(
            {**read.model_dump(), "class_name": class_name, "kwargs": kwargs}
        )
        if not is_trusted(source.sha256):
            try:
                trust(source.sha256)
            except UserError as exc:  # still builds; it will be asked again next time
                QMessageBox.warning(self.panel, "Not remembered", str(exc))
        self.panel._push(self.form.choose_module(source))

    def _replace(self, name: str, dialog: Any) -> None:
        old = getattr(self, name)
        if old is not None:
            old.deleteLater()
        setattr(self, name, dialog)


def _json(kwargs: dict[str, Any]) -> str:
    import json

    return json.dumps(kwargs)
