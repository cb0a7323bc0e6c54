"""A real HTTP server on 127.0.0.1 serving a folder, for the download tests (nothing in the
suite reaches outside this machine). How it sends a file is the test's to choose: at once, in
slow chunks (so a cancel lands mid-file), after a delay, or a first piece and then silence (a
server that stops answering)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Send = Callable[[BinaryIO, BinaryIO], None]
"""How the server copies a file (source) to the client (outputfile)."""


def at_once(source: BinaryIO, out: BinaryIO) -> None:
    while chunk := source.read(65_536):
        out.write(chunk)


def in_slow_chunks(chunk: int = 16_384, pause_s: float = 0.02) -> Send:
    """A chunk every ``pause_s``; a client that hangs up (a cancel) ends it quietly."""

    def send(source: BinaryIO, out: BinaryIO) -> None:
        try:
            while piece := source.read(chunk):
                out.write(piece)
                out.flush()
                time.sleep(pause_s)
        except OSError:
            pass

    return send


def after(delay_s: float) -> Send:
    """The whole file, once ``delay_s`` has passed (a download that takes a while)."""

    def send(source: BinaryIO, out: BinaryIO) -> None:
        time.sleep(delay_s)
        at_once(source, out)

    return send


def then_silence(release: threading.Event, first: int = 1000) -> Send:
    """A first piece, then nothing until ``release`` is set (or 10 s): a server gone quiet."""

    def send(source: BinaryIO, out: BinaryIO) -> None:
        out.write(source.read(first))
        out.flush()
        release.wait(10)

    return send


class FileServer:
    """``with FileServer(folder) as server:`` serves ``folder`` at ``server.url``."""

    def __init__(self, folder: Path, send: Send = at_once) -> None:
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                super().__init__(*args, directory=str(folder), **kwargs)

            def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
                send(source, outputfile)

            def log_message(self, *args):  # type: ignore[no-untyped-def]
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
