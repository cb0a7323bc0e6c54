"""What the window opens and saves: datasets, run specs, run databases, and drops of any of
them on the window. A mixin of MainWindow, kept apart so main_window.py stays about the panels
and the jobs; it uses the window's ``state``, ``settings``, ``controller``, ``data_panel``,
``tabs`` and ``status_label``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox

from cnn_lab.app.bridge.task import run_task
from cnn_lab.app.settings import RECENT_SPECS_KEY
from cnn_lab.engine.errors import SpecError, UserError
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import is_postgres, is_sqlite, open_store, resolve_location
from cnn_lab.engine.store.locations import describe

DATASET_FILE_FILTER = (
    "Datasets (*.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tar.xz *.csv *.npz);;All files (*)"
)
SPEC_FILE_FILTER = "Run specs (*.json);;All files (*)"
SPEC_SUFFIXES = (".json",)
DATABASE_SUFFIXES = (".sqlite", ".db", ".sqlite3")
LAB_DATABASE_EXAMPLE = "postgresql://USER@HOST:5432/DATABASE"


class WindowFiles:
    """File ▸ Import, Open Spec, Save Spec, Open Run Database, Open a Lab Database, the
    recent lists, and drops."""

    state: Any
    settings: Any
    controller: Any
    data_panel: Any
    tabs: Any
    status_label: Any
    show_panel: Callable[[str], None]
    _show_run_in_monitor: Callable[[], None]

    def choose_dataset_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of class folders")
        if folder:
            self.open_dataset(folder)

    def choose_dataset_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a dataset file", "", DATASET_FILE_FILTER
        )
        if path:
            self.open_dataset(path)

    def open_dataset(self, source: str) -> None:
        """Import a folder, archive, CSV, .npz or ``sample:NAME`` in the Data panel."""
        self.show_panel("data")
        self.data_panel.open_source(source)

    def choose_spec(self) -> None:
        recent = self.settings.paths(RECENT_SPECS_KEY)
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a run spec", str(Path(recent[0]).parent) if recent else "",
            SPEC_FILE_FILTER,
        )  # fmt: skip
        if path:
            self.open_spec(path)

    def open_spec(self, path: str) -> bool:
        """Load a run spec file into the panels (dataset, architecture, hyperparameters).

        A file that cannot be read or is not a spec is refused with a sentence and changes
        nothing; either way it goes first (or leaves) the Recent Specs list.
        """
        try:
            spec = RunSpec.from_json(Path(path).read_bytes())
        except OSError as exc:
            self.settings.forget(RECENT_SPECS_KEY, path)
            QMessageBox.warning(self, "Cannot open the spec", f"Cannot read {path}: {exc}.")
            return False
        except SpecError as exc:
            QMessageBox.warning(self, "Cannot open the spec", f"{path}: {exc}")
            return False
        self.state.name = spec.name
        self.state.update(dataset=spec.dataset, architecture=spec.architecture, train=spec.train)
        self.settings.remember(RECENT_SPECS_KEY, str(Path(path).resolve()))
        self.status_label.setText(f"Loaded the spec {Path(path).name}: Train runs it.")
        return True

    def choose_spec_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the run spec", self._default_spec_name(), SPEC_FILE_FILTER
        )
        if path:
            self.save_spec(path if path.endswith(".json") else f"{path}.json")

    def save_spec(self, path: str) -> bool:
        """Write the current choices as a run spec (the JSON ``cnn-lab train --spec`` reads)."""
        text = self.state.run_spec().to_json(indent=2)
        try:
            Path(path).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            QMessageBox.warning(self, "Cannot save the spec", f"Cannot write {path}: {exc}.")
            return False
        self.settings.remember(RECENT_SPECS_KEY, str(Path(path).resolve()))
        self.status_label.setText(f"Saved the spec to {path}.")
        return True

    def choose_database(self) -> None:
        if self._refuse_switch():
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Open or create a run database",
            self.state.db_path,
            "SQLite databases (*.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.open_database(path)

    def _refuse_switch(self) -> bool:
        if self.controller.busy:  # queued run ids belong to the database they were made in
            QMessageBox.information(
                self,
                "Runs are training",
                "Switch databases once every run has finished, or stop them first.",
            )
            return True
        return False

    def choose_lab_database(self) -> None:
        """Ask for a lab's ``postgresql://`` address and open it (a file dialog cannot name
        a database on a server)."""
        if self._refuse_switch():
            return
        current = self.state.db_path if is_postgres(self.state.db_path) else ""
        text, accepted = QInputDialog.getText(
            self,
            "Open a lab database…",
            "The lab's PostgreSQL database, as postgresql://USER@HOST:PORT/DATABASE\n"
            "(a password is better kept in ~/.pgpass than in the address):",
            QLineEdit.EchoMode.Normal,
            current or LAB_DATABASE_EXAMPLE,
        )
        if accepted and text.strip():
            self.open_database(text.strip())

    def open_database(self, path: str) -> None:
        """Switch to the run store at ``path`` (a SQLite file, created if new, or a
        ``postgresql://`` address) once it has opened, and remember it for next time.

        The trial open runs off the GUI thread (a lab's server may take its connect timeout
        to answer); a refusal comes back as a message box and the window stays on the store
        it had."""
        if self._refuse_switch():
            return
        try:
            location = resolve_location(path)  # another scheme is refused with a sentence
        except UserError as exc:
            QMessageBox.warning(self, "Cannot open the database", str(exc))
            return
        if is_sqlite(location):
            location = str(Path(location).resolve())
        self.status_label.setText(f"Opening {describe(location)}…")

        def check(progress: Any, should_stop: Any) -> str:
            open_store(location).close()  # an address psycopg cannot read is refused here
            return location

        run_task(
            check,
            parent=self,
            on_done=self._switch_database,
            on_error=lambda sentence: self._database_refused(sentence),
            name="open-database",
        )

    def _database_refused(self, sentence: str) -> None:
        self.status_label.setText("")
        QMessageBox.warning(self, "Cannot open the database", sentence)

    def _switch_database(self, location: str) -> None:
        if self._refuse_switch():  # a run was queued while the store answered
            # The "Opening …" line would otherwise stay, as if the switch were still coming.
            self.status_label.setText("")
            return
        self.state.set_db_path(location)
        self.controller.db_path = location
        self.settings.remember_database(location)
        self._show_run_in_monitor()
        self.status_label.setText(f"Run database: {describe(location)}")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and all(url.isLocalFile() for url in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """A spec opens, a database switches, anything else is imported as a dataset (a
        panel that takes drops itself, such as Predict, gets them first)."""
        urls = event.mimeData().urls()
        if not urls or not urls[0].isLocalFile():
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_dropped(urls[0].toLocalFile())

    def drop_on_panel(self, path: str) -> None:
        """What dropping ``path`` on the panel in front does (screenshots script drops)."""
        panel = self.tabs.currentWidget()
        if hasattr(panel, "predict_paths"):
            panel.predict_paths([path])
        else:
            self.open_dropped(path)

    def open_dropped(self, path: str) -> None:
        handler: Callable[[str], Any] = self.open_dataset
        suffix = Path(path).suffix.lower()
        if Path(path).is_file() and suffix in SPEC_SUFFIXES:
            handler = self.open_spec
        elif Path(path).is_file() and suffix in DATABASE_SUFFIXES:
            handler = self.open_database
        handler(path)

    def _default_spec_name(self) -> str:
        """``NAME.json`` in the folder of the last spec (or home): where Save Spec As starts."""
        recent = self.settings.paths(RECENT_SPECS_KEY)
        folder = Path(recent[0]).parent if recent else Path.home()
        return str(folder / f"{self.state.name or 'run-spec'}.json")
