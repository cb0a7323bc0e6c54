"""The frozen app's entry point: freeze_support() first, then cnn-lab's own main().

cnn-lab starts training, tuning and sweep workers with multiprocessing "spawn". In a frozen
app a spawned child is the app's executable run again with multiprocessing's own arguments;
freeze_support() recognises them, runs the child's work and exits, so the child never
reaches the argument parser. app/main.py is left as it is (it is also the pip entry point,
where freeze_support() does nothing).
"""

from __future__ import annotations

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from cnn_lab.app.main import main

    sys.exit(main())
