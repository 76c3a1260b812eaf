"""The monitor sidecar: drift, performance and verdicts for one served model version.

The pure core (``stats``, ``profile``, ``counts``, ``performance``, ``verdict``)
works on bin counts and has no I/O, so the operator can import it to merge the
windows of several pods and judge them with the same tests. ``window`` keeps
the live, bounded state; ``reference`` reads datasets; ``app`` and ``cli`` are
the thin edges. This package must not import scikit-learn, pandas or pyarrow at
import time: the sidecar's start-up budget is half a second.
"""
