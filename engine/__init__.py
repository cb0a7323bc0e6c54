"""cnn-lab's engine: everything that computes. Pure Python and PyTorch, never Qt.

Importing this package must stay cheap (no torch): the GUI imports specs and the
store from here before its window is shown, and torch is loaded only by the job
process or by commands that train.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cnn-lab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
