"""``python -m hack.podrunner``: see hack/podrunner/cli.py."""

from hack.podrunner.cli import main

raise SystemExit(main())
