"""Turn a pod (the API's camelCase dict) into a plan of local processes.

Pure: every function here takes plain data (the pod, the ConfigMaps and Secrets
it references, the sandbox directory) and returns plain data. Nothing here
starts a process, touches the filesystem or calls the API server.

How a container becomes a process:

* argv is ``command + args``. A container with ``args`` and no ``command``
  runs ``args`` as the whole argv: the image is ignored, and driftward's image
  has no entrypoint of its own (its containers say ``args: [driftward-serving,
  serve]``). A container with neither cannot run and is reported as such.
* The environment is a small allow-list from the runner's own (PATH with the
  runner's venv first, locale, PYTHONPATH), then ``envFrom``, then ``env``
  with ``$(VAR)`` expansion and ``valueFrom`` (fieldRef, configMapKeyRef,
  secretKeyRef), as the kubelet does.
* Networking: every container of the pod shares the pod IP, as in a real pod.
  Variables that name the listen address (HOST, DRIFTWARD_SERVING_HOST,
  DRIFTWARD_MONITOR_HOST) are set to the pod IP, a wildcard bind address
  (0.0.0.0, ::) in env or args becomes the pod IP, and ``127.0.0.1`` /
  ``localhost`` as a host (a whole value, or after ``//`` or ``@`` in a URL)
  become the pod IP too: in a pod, loopback is the pod's own network
  namespace, and here the pod IP plays that part.
* Volumes are directories in the pod's sandbox; an env value or argument that
  starts with a volumeMount's mountPath is rewritten to the matching sandbox
  path, and a mount at /tmp becomes TMPDIR.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

FINALIZER = "podrunner.driftward.dev/processes"
HOST_ENV = ("HOST", "DRIFTWARD_SERVING_HOST", "DRIFTWARD_MONITOR_HOST")
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "SSL_CERT_FILE")
SUPPORTED_VOLUMES = (
    "emptyDir",
    "configMap",
    "secret",
    "downwardAPI",
    "projected (configMap, secret, downwardAPI, serviceAccountToken)",
)
SUPPORTED_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels['<key>']",
    "metadata.annotations['<key>']",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_LOOPBACK_HOST = re.compile(r"(?:(?<=//)|(?<=@)|^)(?:127\.0\.0\.1|localhost)(?=$|[:/])")
_WILDCARDS = ("0.0.0.0", "::", "[::]")
_MAP_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")

RestartPolicy = Literal["Always", "OnFailure", "Never"]


class SpecError(ValueError):
    """A pod the runner cannot run as written: names the field, the value and what is allowed."""

    def __init__(self, path: str, value: object, allowed: str) -> None:
        super().__init__(f"{path}: {value!r} is not supported by the podrunner; {allowed}")
        self.path = path


@dataclass(frozen=True)
class HttpGet:
    """An httpGet probe action with its port resolved."""

    host: str
    port: int
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TcpSocket:
    """A tcpSocket probe action with its port resolved."""

    host: str
    port: int


@dataclass(frozen=True)
class Exec:
    """An exec probe action: a command run with the container's environment."""

    argv: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """One probe and its timing, in the API's units and defaults."""

    action: HttpGet | TcpSocket | Exec | None
    error: str | None = None
    """Why the probe can never pass (an unknown port name, a grpc probe); None if it can."""
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Volume:
    """A volume materialised as a directory: the files to write into it (relative path: bytes)."""

    name: str
    path: Path
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerPlan:
    """One container as a local process."""

    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None


@dataclass(frozen=True)
class PodPlan:
    """Everything needed to run one pod: where, what, and how to restart."""

    namespace: str
    name: str
    uid: str
    ip: str
    sandbox: Path
    volumes: tuple[Volume, ...]
    init_containers: tuple[ContainerPlan, ...]
    containers: tuple[ContainerPlan, ...]
    restart_policy: RestartPolicy
    grace_seconds: float


@dataclass(frozen=True)
class References:
    """The ConfigMaps and Secrets a pod names, so the I/O layer can fetch them first."""

    config_maps: frozenset[str]
    secrets: frozenset[str]


def pod_key(pod: Mapping[str, Any]) -> str:
    """namespace/name of a pod, for logs and maps."""
    meta = pod.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def compute_pod_ip(pod: Mapping[str, Any]) -> str | None:
    """The pod's IP if the runner should run it (assigned, loopback, not host network)."""
    ip = pod.get("status", {}).get("podIP")
    if not ip or pod.get("spec", {}).get("hostNetwork"):
        return None
    try:
        return ip if ipaddress.ip_address(ip).is_loopback else None
    except ValueError:
        return None


def _containers(pod: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    spec = pod.get("spec", {})
    return [
        *((f"spec.initContainers[{i}]", c) for i, c in enumerate(spec.get("initContainers") or [])),
        *((f"spec.containers[{i}]", c) for i, c in enumerate(spec.get("containers") or [])),
    ]


def compute_references(pod: Mapping[str, Any]) -> References:
    """Every ConfigMap and Secret the pod reads through volumes, env or envFrom."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for volume in pod.get("spec", {}).get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for source in sources:
            if "configMap" in source:
                config_maps.add(source["configMap"]["name"])
            if "secret" in source:
                secret = source["secret"]
                secrets.add(secret.get("secretName") or secret.get("name"))
    for _, container in _containers(pod):
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        for var in container.get("env") or []:
            ref = var.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                config_maps.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
    return References(frozenset(config_maps), frozenset(secrets))


def expand_vars(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ is a literal $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(replace, value)


def localize(value: str, ip: str) -> str:
    """Point pod-local addresses at the pod IP: loopback hosts and wildcard bind addresses."""
    if value in _WILDCARDS:
        return ip
    flag, sep, rest = value.partition("=")
    if sep and rest in _WILDCARDS:
        return f"{flag}={ip}"
    return _LOOPBACK_HOST.sub(ip, value)


def remap_path(value: str, mounts: Sequence[tuple[str, Path]]) -> str:
    """Rewrite a value (or the right side of NAME=value) that starts with a mountPath."""

    def one(text: str) -> str | None:
        for mount_path, host_path in mounts:
            if text == mount_path:
                return str(host_path)
            if text.startswith(mount_path.rstrip("/") + "/"):
                return str(host_path / text[len(mount_path.rstrip("/")) + 1 :])
        return None

    whole = one(value)
    if whole is not None:
        return whole
    flag, sep, rest = value.partition("=")
    if sep:
        right = one(rest)
        if right is not None:
            return f"{flag}={right}"
    return value


def _field_value(pod: Mapping[str, Any], path: str, where: str) -> str:
    meta = pod.get("metadata", {})
    status = pod.get("status", {})
    spec = pod.get("spec", {})
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    match = _MAP_KEY.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise SpecError(where, path, f"allowed field paths: {', '.join(SUPPORTED_FIELD_PATHS)}")


def _lookup(
    kind: str,
    ref: Mapping[str, Any],
    store: Mapping[str, Mapping[str, str]],
    where: str,
) -> str | None:
    """A key of a ConfigMap/Secret; None if optional and missing; SpecError if required."""
    name, key, optional = ref["name"], ref["key"], bool(ref.get("optional"))
    data = store.get(name)
    if data is None or key not in data:
        if optional:
            return None
        missing = f"{kind} {name!r}" if data is None else f"key {key!r} in {kind} {name!r}"
        raise SpecError(where, f"{name}/{key}", f"{missing} does not exist (yet); create it")
    return data[key]


def build_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    where: str,
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's own environment (envFrom, then env), as the kubelet computes it."""
    env: dict[str, str] = {}
    for i, source in enumerate(container.get("envFrom") or []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source or "secretRef" in source:
            kind = "configMap" if "configMapRef" in source else "secret"
            ref = source.get("configMapRef") or source.get("secretRef") or {}
            store = config_maps if kind == "configMap" else secrets
            data = store.get(ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise SpecError(
                    f"{where}.envFrom[{i}]", ref["name"], f"{kind} does not exist (yet); create it"
                )
            if kind == "secret":
                data = {k: _decode(v) for k, v in data.items()}
            env.update({prefix + k: v for k, v in data.items()})
        else:
            raise SpecError(f"{where}.envFrom[{i}]", source, "allowed: configMapRef, secretRef")
    for i, var in enumerate(container.get("env") or []):
        if "valueFrom" not in var:
            env[var["name"]] = expand_vars(str(var.get("value", "")), env)
            continue
        value = _value_from(
            pod, var["valueFrom"], f"{where}.env[{i}].valueFrom", config_maps, secrets
        )
        if value is not None:
            env[var["name"]] = value
    return env


def _value_from(
    pod: Mapping[str, Any],
    ref: Mapping[str, Any],
    where: str,
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> str | None:
    """An env var's valueFrom; None when an optional reference is missing."""
    if "fieldRef" in ref:
        return _field_value(pod, ref["fieldRef"]["fieldPath"], f"{where}.fieldRef")
    if "configMapKeyRef" in ref:
        return _lookup("configMap", ref["configMapKeyRef"], config_maps, f"{where}.configMapKeyRef")
    if "secretKeyRef" in ref:
        value = _lookup("secret", ref["secretKeyRef"], secrets, f"{where}.secretKeyRef")
        return None if value is None else _decode(value)
    raise SpecError(
        where, sorted(ref), "allowed: fieldRef, configMapKeyRef, secretKeyRef, or a literal value"
    )


def _decode(value: str) -> str:
    """A Secret's data value (base64, as the API returns it) as text."""
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _resolve_port(port: object, ports: Mapping[str, int], where: str) -> tuple[int | None, str]:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port), ""
    if isinstance(port, str) and port in ports:
        return ports[port], ""
    known = ", ".join(sorted(ports)) or "none"
    return None, f"{where}.port {port!r} names no containerPort of this container (names: {known})"


def build_probe(
    probe: Mapping[str, Any] | None, ip: str, ports: Mapping[str, int], where: str
) -> Probe | None:
    """A probe with its port resolved and the API's defaults applied."""
    if not probe:
        return None

    def timed(action: HttpGet | TcpSocket | Exec | None, error: str | None) -> Probe:
        return Probe(
            action=action,
            error=error or None,
            initial_delay=float(probe.get("initialDelaySeconds", 0)),
            period=float(probe.get("periodSeconds", 10)),
            timeout=float(probe.get("timeoutSeconds", 1)),
            success_threshold=int(probe.get("successThreshold", 1)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
        )

    action: HttpGet | TcpSocket | Exec | None = None
    error: str | None = None
    if "httpGet" in probe:
        get = probe["httpGet"]
        port, error = _resolve_port(get.get("port"), ports, f"{where}.httpGet")
        if port is not None:
            action = HttpGet(
                host=localize(get.get("host") or ip, ip),
                port=port,
                path=get.get("path") or "/",
                scheme=str(get.get("scheme", "HTTP")).upper(),
                headers=tuple((h["name"], h["value"]) for h in get.get("httpHeaders") or []),
            )
    elif "tcpSocket" in probe:
        sock = probe["tcpSocket"]
        port, error = _resolve_port(sock.get("port"), ports, f"{where}.tcpSocket")
        if port is not None:
            action = TcpSocket(localize(sock.get("host") or ip, ip), port)
    elif "exec" in probe:
        action = Exec(tuple(str(c) for c in probe["exec"].get("command") or []))
    else:
        kinds = sorted(set(probe) - set(_PROBE_TIMING))
        error = (
            f"{where}: probe handler {kinds} is not supported by the podrunner "
            "(allowed: httpGet, tcpSocket, exec)"
        )
    return timed(action, error)


_PROBE_TIMING = (
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
)


@dataclass(frozen=True)
class _Stores:
    config_maps: Mapping[str, Mapping[str, str]]
    binary_config_maps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]


def _source_files(
    pod: Mapping[str, Any], kind: str, source: Mapping[str, Any], where: str, stores: _Stores
) -> dict[str, bytes]:
    """The files one volume source (or one projected source) puts in the volume."""
    if kind == "configMap":
        data = stores.config_maps.get(source["name"])
        if data is None:
            if not source.get("optional"):
                raise SpecError(where, source["name"], "configMap does not exist (yet); create it")
            return {}
        content = {k: v.encode() for k, v in data.items()}
        binary = stores.binary_config_maps.get(source["name"], {})
        content.update({k: base64.b64decode(v) for k, v in binary.items()})
        return _project(content, source.get("items"), where)
    if kind == "secret":
        name = source.get("secretName") or source.get("name")
        secret = stores.secrets.get(str(name))
        if secret is None:
            if not source.get("optional"):
                raise SpecError(where, name, "secret does not exist (yet); create it")
            return {}
        content = {k: base64.b64decode(v) for k, v in secret.items()}
        return _project(content, source.get("items"), where)
    if kind == "downwardAPI":
        files = {}
        for j, item in enumerate(source.get("items") or []):
            if "fieldRef" not in item:
                raise SpecError(f"{where}.items[{j}]", sorted(item), "allowed: path, fieldRef")
            value = _field_value(pod, item["fieldRef"]["fieldPath"], f"{where}.items[{j}]")
            files[_relative(item["path"], f"{where}.items[{j}].path")] = value.encode()
        return files
    if kind == "serviceAccountToken":
        # No kubelet mints a token here: the file exists so mounts resolve, but it is
        # empty, and a pod that calls the API server with it is refused (documented).
        return {_relative(source.get("path", "token"), f"{where}.path"): b""}
    raise SpecError(where, kind, f"allowed volume types: {', '.join(SUPPORTED_VOLUMES)}")


def build_volumes(
    pod: Mapping[str, Any],
    sandbox: Path,
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
    binary_config_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Volume, ...]:
    """Each volume as a sandbox directory and the files it holds."""
    stores = _Stores(config_maps, binary_config_maps or {}, secrets)
    volumes = []
    for i, volume in enumerate(pod.get("spec", {}).get("volumes") or []):
        where = f"spec.volumes[{i}]"
        kinds = sorted(set(volume) - {"name"})
        kind = kinds[0] if len(kinds) == 1 else repr(kinds)
        files: dict[str, bytes] = {}
        if kind == "emptyDir":
            pass
        elif kind == "projected":
            for j, projected in enumerate(volume["projected"].get("sources") or []):
                for source_kind, source in projected.items():
                    here = f"{where}.projected.sources[{j}].{source_kind}"
                    files.update(_source_files(pod, source_kind, source, here, stores))
        elif kind in ("configMap", "secret", "downwardAPI"):
            files = _source_files(pod, kind, volume[kind], f"{where}.{kind}", stores)
        else:
            raise SpecError(where, kind, f"allowed volume types: {', '.join(SUPPORTED_VOLUMES)}")
        volumes.append(Volume(volume["name"], sandbox / "volumes" / volume["name"], files))
    return tuple(volumes)


def _relative(path: str, where: str) -> str:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise SpecError(where, path, "use a relative path without '..'")
    return str(relative)


def _project(
    content: Mapping[str, bytes], items: Sequence[Mapping[str, Any]] | None, where: str
) -> dict[str, bytes]:
    if not items:
        return dict(content)
    files = {}
    for j, item in enumerate(items):
        if item["key"] not in content:
            if item.get("optional"):
                continue
            raise SpecError(f"{where}.items[{j}].key", item["key"], "the key does not exist")
        files[_relative(item["path"], f"{where}.items[{j}].path")] = content[item["key"]]
    return files


def _mounts(
    container: Mapping[str, Any], volumes: Mapping[str, Volume], where: str
) -> list[tuple[str, Path]]:
    mounts = []
    for j, mount in enumerate(container.get("volumeMounts") or []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise SpecError(
                f"{where}.volumeMounts[{j}].name", mount["name"], "name a volume of the pod"
            )
        sub = mount.get("subPath") or ""
        mounts.append((str(mount["mountPath"]), volume.path / sub if sub else volume.path))
    # Longest mountPath first, so /etc/app/conf wins over /etc/app.
    return sorted(mounts, key=lambda m: len(m[0]), reverse=True)


def build_container(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    where: str,
    *,
    ip: str,
    sandbox: Path,
    volumes: Mapping[str, Volume],
    base_env: Mapping[str, str],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> ContainerPlan:
    """One container's process: argv, environment, working directory and probes."""
    mounts = _mounts(container, volumes, where)
    own = build_env(pod, container, where, config_maps, secrets)
    env: dict[str, str] = {
        **base_env,
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        "HOSTNAME": str(pod.get("metadata", {}).get("name", "")),
    }
    for mount_path, host_path in mounts:
        if mount_path.rstrip("/") == "/tmp":
            env["TMPDIR"] = str(host_path)
    env.update({k: remap_path(localize(v, ip), mounts) for k, v in own.items()})
    for name in HOST_ENV:
        env[name] = localize(env[name], ip) if name in own else ip
    raw = [*(container.get("command") or []), *(container.get("args") or [])]
    if not raw:
        raise SpecError(
            f"{where}.command",
            None,
            "give command or args: the podrunner ignores the image, so it has no entrypoint",
        )
    argv = tuple(remap_path(localize(expand_vars(str(a), env), ip), mounts) for a in raw)
    cwd = sandbox / "home"
    if container.get("workingDir"):
        mapped = remap_path(str(container["workingDir"]), mounts)
        if mapped != container["workingDir"]:
            cwd = Path(mapped)
    ports = {
        str(p["name"]): int(p["containerPort"])
        for p in container.get("ports") or []
        if p.get("name")
    }

    def probe(kind: str) -> Probe | None:
        return build_probe(container.get(kind), ip, ports, f"{where}.{kind}")

    return ContainerPlan(
        name=str(container["name"]),
        image=str(container.get("image", "")),
        argv=argv,
        env=env,
        cwd=cwd,
        readiness=probe("readinessProbe"),
        liveness=probe("livenessProbe"),
        startup=probe("startupProbe"),
    )


def build_pod_plan(
    pod: Mapping[str, Any],
    sandbox: Path,
    *,
    base_env: Mapping[str, str],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
    binary_config_maps: Mapping[str, Mapping[str, str]] | None = None,
    max_grace_seconds: float = 30.0,
) -> PodPlan:
    """The whole pod as processes; SpecError names the first field the runner cannot honour."""
    ip = compute_pod_ip(pod)
    if ip is None:
        raise SpecError("status.podIP", pod.get("status", {}).get("podIP"), "need a loopback IP")
    spec = pod.get("spec", {})
    volumes = build_volumes(pod, sandbox, config_maps, secrets, binary_config_maps)
    by_name = {v.name: v for v in volumes}

    def plan(where: str, container: Mapping[str, Any]) -> ContainerPlan:
        return build_container(
            pod,
            container,
            where,
            ip=ip,
            sandbox=sandbox,
            volumes=by_name,
            base_env=base_env,
            config_maps=config_maps,
            secrets=secrets,
        )

    init = tuple(plan(w, c) for w, c in _containers(pod) if w.startswith("spec.initContainers"))
    main = tuple(plan(w, c) for w, c in _containers(pod) if w.startswith("spec.containers"))
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        raise SpecError("spec.restartPolicy", policy, "allowed: Always, OnFailure, Never")
    grace = spec.get("terminationGracePeriodSeconds")
    meta = pod["metadata"]
    return PodPlan(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        uid=str(meta.get("uid", "")),
        ip=ip,
        sandbox=sandbox,
        volumes=volumes,
        init_containers=init,
        containers=main,
        restart_policy=policy,
        grace_seconds=min(float(30 if grace is None else grace), max_grace_seconds),
    )


def build_base_env(environ: Mapping[str, str], bin_dir: Path) -> dict[str, str]:
    """The part of the runner's environment a container inherits: PATH (venv first), locale."""
    env = {k: environ[k] for k in PASSED_ENV if k in environ}
    path = environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PATH"] = f"{bin_dir}:{path}" if str(bin_dir) not in path.split(":") else path
    return env
