"""``python -m cnn_lab.engine.cli``: the commands without the window (torchrun starts this)."""

import sys

from cnn_lab.engine.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
