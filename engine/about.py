"""What the About box and bug reports need: versions of everything that trains, and where the
data lives. Plain data, no Qt: the window shows it, ``cnn-lab --version --verbose`` could too.

PyTorch is imported here (for its CUDA and cuDNN versions), so call this when asked, never at
start-up. The GPU driver comes from NVML, which answers without torch and says why when there
is no NVIDIA GPU.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> list[tuple[str, str]]:
    """(name, version) rows: cnn-lab, Python, PyTorch, torchvision, CUDA, cuDNN, GPUs, driver."""
    import torch

    from cnn_lab.engine import __version__
    from cnn_lab.engine.monitor import nvml

    rows = [
        ("cnn-lab", __version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("PyTorch", torch.__version__),
        ("torchvision", _package_version("torchvision")),
    ]
    cuda = torch.version.cuda
    if cuda is None:
        rows.append(("CUDA", "none (a CPU-only PyTorch build)"))
    else:
        usable = "usable" if torch.cuda.is_available() else "no usable GPU"
        rows.append(("CUDA", f"{cuda} (PyTorch's build; {usable})"))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    rows.append(("cuDNN", str(cudnn) if cudnn else "none"))
    inventory = nvml.gpu_inventory()
    if inventory.available and inventory.gpus:
        names = ", ".join(f"{g.index}: {g.name}" for g in inventory.gpus)
        rows.append(("GPUs", names))
        rows.append(("GPU driver", inventory.driver or "unknown"))
    else:
        rows.append(("GPUs", "none"))
        rows.append(("GPU driver", inventory.message or "no NVIDIA driver"))
    rows.append(("Platform", platform.platform(terse=True)))
    return rows


def data_locations(db_path: str | Path) -> list[tuple[str, str]]:
    """(what, where) rows: the run database, runs' files, the dataset cache, the error log.

    The window adds its settings file, which is Qt's business and not the engine's.
    """
    import platformdirs

    from cnn_lab.engine.data.paths import cache_root
    from cnn_lab.engine.store.locations import artifact_root, connect_url, describe, is_sqlite
    from cnn_lab.engine.store.paths import run_files_dir

    location = str(db_path)  # a postgresql:// address must not go through Path
    if is_sqlite(location):
        files = run_files_dir(location, 0).parent
    else:  # as PgRunStore.path names it: a marker file in the artifact root
        from cnn_lab.engine.store.postgres.connect import target

        marker = artifact_root(location) / f"{target(connect_url(location)).dbname}.postgres"
        files = run_files_dir(marker, 0).parent
    return [
        ("Run database", describe(location)),
        ("Runs' weights and exports", str(files)),
        ("Prepared-dataset cache", str(cache_root())),
        ("Error log", str(platformdirs.user_log_path("cnn-lab", appauthor=False))),
    ]
