"""Fetch a model artifact, verify its digest, and load it safely: serving's one I/O edge.

Order matters and is the point of this module:

1. ``fetch_artifact`` streams the bytes from ``file://``, ``http(s)://`` or
   ``s3://`` (boto3, so ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and the standard
   credential chain apply) into a private temporary file, hashing as it writes.
2. A digest mismatch deletes the file and fails; nothing has been deserialised.
3. ``read_model`` loads the verified copy (never the source, which could change
   between hashing and loading). skops is the default: its untrusted types are
   checked against an allow-list (scikit-learn, NumPy and SciPy *classes*,
   plus any explicitly configured names) and anything else is refused by name.
   joblib and pickle run arbitrary code when loaded, so they need
   ``ALLOW_UNSAFE_FORMATS=true`` as well as the digest.

``read_model_state`` never raises: every failure becomes a not-ready
``ModelState`` whose reason is a CamelCase constant, so the process stays up,
answers liveness, and reports the reason on its readiness probe. This module
must not know about HTTP serving or metrics.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import pickle
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import unquote, urlsplit

import joblib
import sklearn
import skops.io
from sklearn.exceptions import InconsistentVersionWarning

from driftward_serving import recordbatch
from driftward_serving.predictor import Predictor, build_predictor
from driftward_serving.settings import ServingSettings

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1 << 20
HTTP_TIMEOUT_SECONDS: Final = 60.0
# How many estimator names a version-mismatch message lists per saved version.
MISMATCH_NAMES_SHOWN: Final = 3

# Readiness reasons (CamelCase, as Kubernetes condition reasons).
READY: Final = "Ready"
LOADING: Final = "Loading"
FETCH_FAILED: Final = "FetchFailed"
DIGEST_MISMATCH: Final = "DigestMismatch"
UNSAFE_FORMAT_REFUSED: Final = "UnsafeFormatRefused"
UNTRUSTED_TYPES: Final = "UntrustedTypes"
LOAD_FAILED: Final = "LoadFailed"
NOT_A_MODEL: Final = "NotAModel"
SKLEARN_VERSION_REFUSED: Final = "SklearnVersionRefused"

# Modules whose classes a skops artifact may instantiate without being listed by name.
TRUSTED_MODULE_PREFIXES: Final = ("sklearn.", "numpy.", "scipy.sparse.", "scipy.special.")


class ArtifactError(Exception):
    """An artifact that cannot be served, with a readiness reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ModelState:
    """Whether the model is ready to serve, and why not if it is not."""

    ready: bool
    reason: str
    message: str
    predictor: Predictor | None = None
    # Set when the artifact was saved with another scikit-learn version. By default the
    # model is served (refusing would strand every stable version at an upgrade), and
    # said so; SKLEARN_VERSION_MISMATCH=refuse makes it a reason not to be ready.
    sklearn_mismatch: str = ""


def read_model_state(settings: ServingSettings) -> ModelState:
    """Fetch, verify and load the configured artifact; report failure as a state, never raise."""
    scratch = Path(tempfile.mkdtemp(prefix="driftward-artifact-"))
    mismatch = ""
    try:
        path = fetch_artifact(settings.artifact_uri, settings.artifact_sha256, scratch)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InconsistentVersionWarning)
            model = read_model(
                path, settings.model_format, settings.allow_unsafe_formats, settings.trusted_types
            )
        mismatch = describe_version_mismatch(_version_warnings(caught))
        if mismatch and settings.sklearn_version_mismatch == "refuse":
            raise ArtifactError(
                SKLEARN_VERSION_REFUSED,
                f"the artifact was {mismatch}; it is refused because "
                "DRIFTWARD_SERVING_SKLEARN_VERSION_MISMATCH=refuse (set it to warn to serve "
                "it anyway)",
            )
        try:
            predictor = build_predictor(model, settings.feature_names)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(NOT_A_MODEL, f"the artifact cannot be served: {exc}") from exc
        if settings.monitor_url:
            check_monitorable(predictor)
    except ArtifactError as exc:
        log.error("model %s not ready: %s: %s", settings.model_name, exc.reason, exc.message)
        return ModelState(
            ready=False, reason=exc.reason, message=exc.message, sklearn_mismatch=mismatch
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    message = (
        f"{settings.model_format} artifact {settings.artifact_uri} verified "
        f"(sha256 {settings.artifact_sha256[:12]}...), kernel {predictor.kernel_name}"
    )
    log.info("model %s ready: %s", settings.model_name, message)
    if mismatch:
        log.warning("model %s: %s", settings.model_name, mismatch)
        message = f"{message}; {mismatch}"
    if not predictor.outputs_probed:
        log.warning(
            "model %s %s, so how many outputs it predicts per row is checked on each "
            "request: a request answered with more than one is a 500",
            settings.model_name,
            "declares no input width"
            if predictor.n_features is None
            else "refused every probe row",
        )
    return ModelState(
        ready=True, reason=READY, message=message, predictor=predictor, sklearn_mismatch=mismatch
    )


def _version_warnings(caught: list[warnings.WarningMessage]) -> list[InconsistentVersionWarning]:
    """The loader's version warnings; any other warning is shown as it would have been."""
    found = []
    for item in caught:
        if isinstance(item.message, InconsistentVersionWarning):
            found.append(item.message)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    return found


def describe_version_mismatch(found: Sequence[InconsistentVersionWarning]) -> str:
    """One sentence naming the scikit-learn versions the artifact's estimators were
    saved with, when any differs from this process's; "" when none does."""
    if not found:
        return ""
    by_version: dict[str, set[str]] = {}
    for item in found:
        by_version.setdefault(item.original_sklearn_version, set()).add(item.estimator_name)
    trained = "; ".join(
        f"{version} ({', '.join(sorted(names)[:MISMATCH_NAMES_SHOWN])}"
        f"{', ...' if len(names) > MISMATCH_NAMES_SHOWN else ''})"
        for version, names in sorted(by_version.items())
    )
    return (
        f"saved with scikit-learn {trained} but served with scikit-learn "
        f"{sklearn.__version__}; scikit-learn does not support loading a model across "
        "versions and its answers may differ: retrain it with this version, or serve it "
        "on an image with the version it was saved with"
    )


def check_monitorable(predictor: Predictor) -> None:
    """Refuse a model whose predictions no record batch could carry to the monitor, at
    load and with the reason, rather than serve it and drop every record it makes."""
    if predictor.classes is None or predictor.classes.dtype.kind not in "OU":
        return
    for value in predictor.classes:
        text = str(value)
        if len(text) > recordbatch.MAX_CATEGORY_CHARS:
            raise ArtifactError(
                NOT_A_MODEL,
                f"the model's class {text[:40]!r}... is {len(text)} characters long; the "
                f"monitor takes class names of up to {recordbatch.MAX_CATEGORY_CHARS} "
                "characters: refit the model on shorter labels, or serve it without "
                "DRIFTWARD_SERVING_MONITOR_URL",
            )


def fetch_artifact(uri: str, expected_sha256: str, directory: Path) -> Path:
    """Stream the artifact into `directory`, hashing as it goes; fail on a digest mismatch."""
    target = directory / "artifact"
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            for chunk in read_artifact_chunks(uri):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except ArtifactError:
        raise
    except Exception as exc:
        # Any transport error (DNS, TLS, S3 auth, missing file) means "could not fetch".
        raise ArtifactError(FETCH_FAILED, f"could not fetch {uri}: {exc}") from exc
    actual = digest.hexdigest()
    if actual != expected_sha256:
        target.unlink(missing_ok=True)
        raise ArtifactError(
            DIGEST_MISMATCH,
            f"sha256 of {uri} is {actual} ({size} bytes) but {expected_sha256} was expected; "
            "refusing to load it. Publish the right artifact or pin its real digest.",
        )
    return target


def read_artifact_chunks(uri: str) -> Iterator[bytes]:
    """Yield the artifact's bytes from a file://, http(s):// or s3:// URI."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        yield from _read_file(Path(unquote(parts.path)))
    elif parts.scheme in ("http", "https"):
        yield from _read_http(uri)
    elif parts.scheme == "s3":
        yield from _read_s3(parts.netloc, parts.path.lstrip("/"))
    else:
        raise ArtifactError(FETCH_FAILED, f"unsupported artifact URI scheme in {uri}")


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from _chunks(handle)


def _read_http(uri: str) -> Iterator[bytes]:
    request = urllib.request.Request(uri, headers={"User-Agent": "driftward-serving"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            yield from _chunks(response)
    except urllib.error.HTTPError as exc:
        raise ArtifactError(FETCH_FAILED, f"GET {uri} answered HTTP {exc.code}") from exc


def _read_s3(bucket: str, key: str) -> Iterator[bytes]:
    # boto3 takes ~0.3 s to import and only s3:// artifacts need it.
    import boto3  # noqa: PLC0415

    client = boto3.client("s3")
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def _chunks(handle: BinaryIO | Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def read_model(
    path: Path, model_format: str, allow_unsafe: bool, trusted_types: Sequence[str] = ()
) -> object:
    """Load a verified artifact in the given format, refusing unsafe content."""
    if model_format in ("joblib", "pickle"):
        if not allow_unsafe:
            raise ArtifactError(
                UNSAFE_FORMAT_REFUSED,
                f"{model_format} artifacts can run arbitrary code when loaded; set "
                "DRIFTWARD_SERVING_ALLOW_UNSAFE_FORMATS=true to accept them, or convert the "
                "model to skops (skops.io.dump)",
            )
        log.warning("loading a %s artifact: trusted by opt-in and sha256 only", model_format)
        return _load_unsafe(path, model_format)
    if model_format == "skops":
        return _load_skops(path, trusted_types)
    raise ArtifactError(LOAD_FAILED, f"unknown model format {model_format!r}")


def _load_unsafe(path: Path, model_format: str) -> object:
    try:
        if model_format == "joblib":
            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    except Exception as exc:
        raise ArtifactError(
            LOAD_FAILED, f"could not load the {model_format} artifact: {exc}"
        ) from exc


def _load_skops(path: Path, trusted_types: Sequence[str]) -> object:
    try:
        untrusted = list(skops.io.get_untrusted_types(file=path))
    except Exception as exc:
        raise ArtifactError(
            LOAD_FAILED, f"the artifact is not a readable skops file ({exc}); check MODEL_FORMAT"
        ) from exc
    refused = compute_refused_types(untrusted, trusted_types)
    if refused:
        raise ArtifactError(
            UNTRUSTED_TYPES,
            f"the skops artifact uses types that are not trusted: {refused}. Only scikit-learn, "
            "NumPy and SciPy classes are trusted by default; if these are expected, list them "
            "in DRIFTWARD_SERVING_TRUSTED_TYPES",
        )
    try:
        return skops.io.load(path, trusted=untrusted)
    except Exception as exc:
        raise ArtifactError(LOAD_FAILED, f"could not load the skops artifact: {exc}") from exc


def compute_refused_types(untrusted: Sequence[str], trusted_types: Sequence[str]) -> list[str]:
    """Return the untrusted names that are neither configured nor library classes."""
    explicit = set(trusted_types)
    return sorted(n for n in untrusted if n not in explicit and not is_library_class(n))


def is_library_class(name: str) -> bool:
    """True if `name` is a class (not a function) defined in a trusted library module."""
    if not name.startswith(TRUSTED_MODULE_PREFIXES):
        return False
    parts = name.split(".")
    # Try the longest importable module prefix; the rest is an attribute path.
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return False
        return isinstance(obj, type)
    return False


def read_file_sha256(path: Path) -> str:
    """Hash a local file (for the CLI and tests)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in _chunks(handle):
            digest.update(chunk)
    return digest.hexdigest()
