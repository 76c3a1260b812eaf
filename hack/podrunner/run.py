"""``python hack/podrunner/run.py``: the same command as ``python -m hack.podrunner``.

Run as a file, Python puts hack/podrunner (not the repository) on sys.path;
this shim adds the repository root so the ``hack.podrunner`` imports resolve.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hack.podrunner.cli import main

raise SystemExit(main())
