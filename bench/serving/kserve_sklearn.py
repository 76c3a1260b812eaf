"""KServe's scikit-learn predict path for the serving benchmark, bound to 127.0.0.1.

Runs inside the benchmark's KServe environment (~/.cache/driftward/bench/kserve-venv),
never in the project's. The ``sklearnserver`` package lives only in the KServe
repository (it is not on PyPI), so this file re-creates what its ``SKLearnModel``
does on a V2 request, using kserve's own public helpers: ``get_predict_input``
turns the request into a NumPy array, the model's ``predict_proba`` (as with
``PREDICT_PROBA=true``) or ``predict`` runs on it, and ``get_predict_response``
builds the V2 response. The server is kserve's ``ModelServer`` with its defaults
(one uvicorn worker, FastAPI, its middleware and metrics), gRPC off, and its
REST listener moved from 0.0.0.0 to 127.0.0.1 (kserve hard-codes 0.0.0.0; the
benchmark must stay on loopback).

    python kserve_sklearn.py --model_name NAME --model_path model.joblib --http_port PORT
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

# kserve parses sys.argv when it is imported; give it only the flags it knows.
parser = argparse.ArgumentParser()
parser.add_argument("--model_name", required=True)
parser.add_argument("--model_path", required=True)
parser.add_argument("--http_port", required=True)
ours = parser.parse_args()
sys.argv = [sys.argv[0], "--http_port", ours.http_port, "--enable_grpc", "false"]

import joblib  # noqa: E402
import kserve  # noqa: E402
from kserve.protocol.rest import server as rest_server  # noqa: E402
from kserve.utils.utils import get_predict_input, get_predict_response  # noqa: E402

_original_init = rest_server.RESTServer.__init__


def _loopback_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.config.host = "127.0.0.1"


rest_server.RESTServer.__init__ = _loopback_init  # type: ignore[method-assign]


class SKLearnModel(kserve.Model):  # type: ignore[misc]
    """What sklearnserver's SKLearnModel does for one model file."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.proba = os.environ.get("PREDICT_PROBA", "false").lower() == "true"

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None) -> Any:
        instances = get_predict_input(payload)
        if self.proba and hasattr(self._model, "predict_proba"):
            result = self._model.predict_proba(instances)
        else:
            result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    model = SKLearnModel(ours.model_name, ours.model_path)
    model.load()
    kserve.ModelServer(enable_grpc=False).start([model])
