"""``driftward-operator``: run the operator, or ask whether a model is healthy.

* ``driftward-operator`` (or ``driftward-operator run``) loads settings once
  from DRIFTWARD_OPERATOR_* variables, serves /metrics and the analysis
  endpoint, registers the handlers and runs kopf.
* ``driftward-operator analyze NAMESPACE/NAME [--version V]`` prints the health
  analysis as JSON and exits 0 when healthy, 1 when not, 2 on an error, so it
  fits an Argo Rollouts Job metric or a CI gate.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import kopf
from pydantic import ValidationError

from driftward_operator import api
from driftward_operator.analysis import compute_analysis
from driftward_operator.handlers import build_api_client, compute_priority, register
from driftward_operator.kube import KubeClient, KubeError
from driftward_operator.metrics import OperatorMetrics
from driftward_operator.server import start_server
from driftward_operator.settings import OperatorSettings


def build_parser() -> argparse.ArgumentParser:
    """The command line: run (the default) and analyze."""
    names = "\n".join(
        f"  DRIFTWARD_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields
    )
    parser = argparse.ArgumentParser(
        prog="driftward-operator",
        description=__doc__,
        epilog=f"Settings are read from the environment:\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the operator (the default)")
    analyze = commands.add_parser("analyze", help="is a MonitoredModel healthy now, and why")
    analyze.add_argument("model", help="NAMESPACE/NAME of the MonitoredModel")
    analyze.add_argument("--version", help="healthy only while this version is serving")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command named on the command line."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "analyze":
        return _analyze(args.model, args.version)
    return _run()


def _analyze(model: str, version: str | None) -> int:
    namespace, _, name = model.partition("/")
    if not namespace or not name or "/" in name:
        print(
            f"driftward-operator analyze: {model!r} must be NAMESPACE/NAME, e.g. ml-prod/fraud",
            file=sys.stderr,
        )
        return 2
    kube = KubeClient(build_api_client(), field_manager=api.FIELD_MANAGER)
    try:
        mm = kube.read(api.API_VERSION, api.KIND, namespace, name)
    except KubeError as exc:
        print(f"driftward-operator analyze: reading {model} failed: {exc}", file=sys.stderr)
        return 2
    if mm is None:
        print(f"driftward-operator analyze: MonitoredModel {model} does not exist", file=sys.stderr)
        return 2
    doc = compute_analysis(mm, version)
    print(json.dumps(doc, indent=2))
    return 0 if doc["healthy"] else 1


def _run() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = OperatorSettings()
    except ValidationError as exc:
        print(f"driftward-operator: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    metrics = OperatorMetrics()
    if settings.http_port:
        kube = KubeClient(build_api_client(), field_manager=settings.field_manager)
        start_server(kube, metrics.registry, settings.http_host, settings.http_port)
    registry = kopf.OperatorRegistry()
    register(registry, settings, metrics)
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
