"""What cnn-lab keeps between launches: window layout, the last database, the theme, recents.

One INI file through QSettings, ``cnn-lab.ini`` in the user's config folder (platformdirs:
``~/.config/cnn-lab`` on Linux), beside ``recent-sources.json``. The path is worked out on
each construction rather than left to QSettings' own default, because Qt caches its default
folders once per process, and tests (which point ``XDG_CONFIG_HOME`` at a temporary folder for
each test) must never read or write a person's real settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from cnn_lab.engine.store.paths import drop_password

MAX_RECENT = 8

THEME_KEY = "appearance/theme"
GEOMETRY_KEY = "window/geometry"
WINDOW_STATE_KEY = "window/state"
PANEL_KEY = "window/panel"
LAST_DB_KEY = "database/last"
RECENT_DBS_KEY = "database/recent"
RECENT_SPECS_KEY = "specs/recent"
WELCOME_DISMISSED_KEY = "welcome/dismissed"


def default_settings_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path("cnn-lab") / "cnn-lab.ini"


class Settings:
    """Typed access to the settings file; every value read is checked, never trusted."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_settings_path()
        self.qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def sync(self) -> None:
        """Write now (QSettings writes on its own later; a crash must not lose the layout)."""
        self.qsettings.sync()

    # ------------------------------------------------------------------ plain values

    def text(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return value if isinstance(value, str) else default

    def set_text(self, key: str, value: str) -> None:
        self.qsettings.setValue(key, value)

    def flag(self, key: str) -> bool:
        return self.text(key) == "true"

    def set_flag(self, key: str, value: bool) -> None:
        self.set_text(key, "true" if value else "false")

    def bytes(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self.qsettings.setValue(key, value)

    # ------------------------------------------------------------------ lists

    def paths(self, key: str) -> list[str]:
        """A recent list, newest first (QSettings returns one item as a bare string)."""
        value = self.qsettings.value(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return []
        return [v for v in value if isinstance(v, str) and v][:MAX_RECENT]

    def remember(self, key: str, path: str) -> list[str]:
        """Put ``path`` first in the list at ``key``; returns the new list."""
        recent = [path] + [p for p in self.paths(key) if p != path]
        recent = recent[:MAX_RECENT]
        self.qsettings.setValue(key, recent)
        return recent

    def forget(self, key: str, path: str) -> list[str]:
        recent = [p for p in self.paths(key) if p != path]
        self.qsettings.setValue(key, recent)
        return recent

    # ------------------------------------------------------------------ named settings

    @property
    def theme(self) -> str:
        return self.text(THEME_KEY, "system")

    @theme.setter
    def theme(self, name: str) -> None:
        self.set_text(THEME_KEY, name)

    @property
    def last_database(self) -> str:
        return self.text(LAST_DB_KEY)

    def remember_database(self, path: str) -> None:
        """Keep the store's location for next time, without a password written in it (a
        settings file is no place for one; ~/.pgpass or PGPASSWORD is)."""
        path = drop_password(path)
        self.set_text(LAST_DB_KEY, path)
        self.remember(RECENT_DBS_KEY, path)
