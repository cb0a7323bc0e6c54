"""One published weights file, downloaded once into torch.hub's cache, or refused in a sentence.

torch.hub's own ``download_url_to_file`` has no timeout, no cancel and only a tqdm bar, so this
is the same algorithm with those three added, and nothing else changed: the file goes to
``torch.hub.get_dir()/checkpoints/<filename>`` (``TORCH_HOME`` moves it, exactly where
``torch.hub.load_state_dict_from_url`` and torchvision's ``weights=`` look), it is written to a
``.partial`` file beside it and renamed only once complete and verified, and the hash
convention is torch.hub's: a name like ``resnet18-f37072fd.pth`` promises that the file's
sha256 starts with ``f37072fd`` (``torch.hub.HASH_REGEX``).

Nothing partial is ever kept: a cancel, a hash mismatch, a server that goes quiet, a full disk
or any other failure removes the ``.partial`` file. A file already in the cache is returned
without touching the network at all.

``CNN_LAB_WEIGHTS_MIRROR`` (an environment variable) replaces the scheme, host and any path
prefix before the file name: with ``CNN_LAB_WEIGHTS_MIRROR=http://mirror.lab/weights``,
``https://download.pytorch.org/models/resnet18-f37072fd.pth`` is fetched from
``http://mirror.lab/weights/resnet18-f37072fd.pth``. A lab without internet access serves the
files it needs that way, and the tests serve theirs from 127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from cnn_lab.engine.errors import Cancelled, UserError

MIRROR_ENV = "CNN_LAB_WEIGHTS_MIRROR"
"""Environment variable: a base URL that replaces the weights URL's scheme, host and folder."""
TIMEOUT_S = 30.0
"""Seconds without a byte (connecting or reading) before the server counts as gone."""
DOWNLOADING = "Downloading weights"
"""The progress stage a download reports (the job shows it in its preparing stage)."""
PICK_FILE_HINT = (
    "Check the internet connection and try again, or pick a weights file you already have "
    "instead (Pretrained file)."
)

Progress = Callable[[str, int, int], None]


def hub_checkpoints_dir() -> Path:
    """torch.hub's cache folder for weights files (``$TORCH_HOME/hub/checkpoints``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def filename_of(url: str) -> str:
    """The file name a URL is cached under, as torch.hub names it."""
    return os.path.basename(urlparse(url).path)


def hash_prefix_of(filename: str) -> str | None:
    """The sha256 prefix the file name promises (``resnet18-f37072fd.pth`` → ``f37072fd``)."""
    from torch.hub import HASH_REGEX  # torch.hub's own convention, not a copy of it

    match = HASH_REGEX.search(filename)
    return match.group(1) if match and match.group(1) else None


def cached_file(url: str, filename: str | None = None) -> Path | None:
    """The cached copy of ``url``'s file (named ``filename`` if given), or None; disk only."""
    path = hub_checkpoints_dir() / (filename or filename_of(url))
    return path if path.is_file() else None


def mirrored(url: str, filename: str | None = None) -> str:
    """``url`` with ``$CNN_LAB_WEIGHTS_MIRROR`` in place of everything before its file name
    (``filename`` on the mirror when given: the name the file is cached under)."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + (filename or filename_of(url))


def download_weights(
    url: str,
    *,
    progress: Progress = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
    timeout_s: float = TIMEOUT_S,
    what: str = "",
    filename: str | None = None,
) -> Path:
    """The cached file for ``url``: from the cache with no network, else downloaded now.

    ``progress(DOWNLOADING, done_bytes, total_bytes)`` follows the download (total 0 when the
    server does not say); ``should_stop()`` is asked between chunks and raises ``Cancelled``.
    Every failure is one ``UserError`` sentence (``what`` names the weights in it, say
    "ResNet-18's IMAGENET1K_V1 weights") whose hint offers picking a file instead.

    ``filename`` caches the file (and fetches it from a mirror) under another name than the
    URL's own: files on the Hugging Face hub are all called ``model.safetensors``.
    """
    filename = filename or filename_of(url)
    folder = hub_checkpoints_dir()
    target = folder / filename
    if target.is_file():
        return target
    what = what or filename
    source = mirrored(url, filename)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"The weights cache folder {folder} cannot be created: {exc.strerror or exc}.",
            "Set TORCH_HOME to a folder you can write to, or pick a weights file instead.",
        ) from None
    partial = folder / f"{filename}.{uuid.uuid4().hex}.partial"
    try:
        digest, _ = _fetch(source, partial, progress, should_stop, timeout_s, what)
        expected = hash_prefix_of(filename)
        if expected is not None and not digest.startswith(expected):
            raise UserError(
                f"The download of {what} is corrupt: its sha256 {digest[:12]}… does not match "
                f"the {expected} its name promises, so it was not kept.",
                PICK_FILE_HINT,
            )
        os.replace(partial, target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def _fetch(
    url: str,
    partial: Path,
    progress: Progress,
    should_stop: Callable[[], bool],
    timeout_s: float,
    what: str,
) -> tuple[str, int]:
    """Stream ``url`` into ``partial``; return its sha256 and size. Any failure is a sentence."""
    host = urlparse(url).netloc or url
    request = urllib.request.Request(url, headers={"User-Agent": "torch.hub"})
    from torch.hub import READ_DATA_CHUNK

    sha256 = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0)
            progress(DOWNLOADING, 0, total)
            with open(partial, "wb") as out:
                while True:
                    if should_stop():
                        raise Cancelled()
                    chunk = response.read(READ_DATA_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    sha256.update(chunk)
                    done += len(chunk)
                    progress(DOWNLOADING, done, total)
            if total and done < total:
                raise UserError(
                    f"The download of {what} from {host} broke off after {done:,} of "
                    f"{total:,} bytes, so it was not kept.",
                    PICK_FILE_HINT,
                )
    except urllib.error.HTTPError as exc:
        raise UserError(
            f"{host} refused the download of {what}: HTTP {exc.code} {exc.reason}.",
            PICK_FILE_HINT,
        ) from None
    except TimeoutError:
        raise UserError(
            f"The download of {what} stopped: {host} did not answer for {timeout_s:g} s "
            f"(after {done:,} bytes), so nothing was kept.",
            PICK_FILE_HINT,
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise UserError(
                f"{what} could not be downloaded: {host} did not answer for {timeout_s:g} s.",
                PICK_FILE_HINT,
            ) from None
        raise UserError(
            f"{what} could not be downloaded: {host} cannot be reached "
            f"({_reason(exc.reason)}); cnn-lab may be offline.",
            PICK_FILE_HINT,
        ) from None
    except http.client.HTTPException as exc:  # the server closed the connection mid-file
        raise UserError(
            f"The download of {what} from {host} broke off after {done:,} bytes "
            f"({type(exc).__name__}), so it was not kept.",
            PICK_FILE_HINT,
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(
                f"The disk is full: {what} could not be saved in {partial.parent}, and "
                "nothing was kept.",
                "Free some space (or set TORCH_HOME to another disk), or pick a weights file.",
            ) from None
        raise UserError(
            f"The download of {what} from {host} failed: {exc.strerror or exc}; nothing was kept.",
            PICK_FILE_HINT,
        ) from None
    return sha256.hexdigest(), done


def _reason(reason: object) -> str:
    """A URLError's reason in words: 'connection refused', 'name not found'."""
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return "its name could not be looked up"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or "no reason given"
