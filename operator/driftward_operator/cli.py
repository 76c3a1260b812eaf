"""``driftward-operator``: load settings once, register handlers and run kopf."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf
from pydantic import ValidationError

from driftward_operator.handlers import compute_priority, register
from driftward_operator.settings import OperatorSettings


def build_parser() -> argparse.ArgumentParser:
    """The command line: only --help, because settings come from the environment."""
    names = "\n".join(
        f"  DRIFTWARD_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields
    )
    return argparse.ArgumentParser(
        prog="driftward-operator",
        description="Run the driftward operator (kopf) until it is stopped.",
        epilog=f"Settings are read from the environment:\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator until it is stopped."""
    build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = OperatorSettings()
    except ValidationError as exc:
        print(f"driftward-operator: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    kopf.run(
        registry=registry,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.standalone,
        priority=compute_priority(settings),
        # Naming a peering makes it mandatory in kopf, so only name it when peering is on.
        peering_name=None if settings.standalone else settings.peering_name,
        liveness_endpoint=liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
