"""``make demo``: the whole story on one machine, from a fresh clone.

1. Start the local control plane in podrunner mode and run hack/podrunner, so
   the model server and monitor containers really run on loopback pod IPs.
2. Install the Helm chart (CRDs, RBAC, the operator's Deployment). Without an
   image registry the chart's operator pod is not run here; the operator runs
   as a local process instead, with the same settings.
3. Deploy MonitoredModel v1, which is promoted; then v2.
4. Send traffic to v2, then drift it.
5. End with ``kubectl get mm`` showing the automatic rollback to v1 and its
   reason, and print where the drift report and the metrics are.

The cluster and processes keep running until Ctrl-C, unless
DRIFTWARD_DEMO_EXIT=1 (the demo's test), which tears everything down at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hack.scenario import (
    ROOT,
    Model,
    build_manifest,
    build_models,
    run_operator,
    send_predictions,
    wait_for,
)
from kubernetes import config

NAMESPACE = "demo"


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run(*command: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(
            f"demo: `{' '.join(command)}` failed (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout


def main() -> int:
    """Run the demo; 0 when the rollback was shown."""
    name = os.environ.get("DRIFTWARD_DEMO_NAME", "driftward-demo")
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    kubeconfig = work / "kubeconfig"
    bin_dir = Path(_run("bash", "hack/testbed/cluster.sh", "bin").strip().splitlines()[-1])
    kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)]

    _say(f"starting the local control plane {name} (podrunner mode, 127.0.0.1 only)")
    _run(
        "bash",
        "hack/testbed/cluster.sh",
        "up",
        name,
        str(kubeconfig),
        env={"DRIFTWARD_TESTBED_PODRUNNER": "1"},
    )
    ready = work / "podrunner.ready"
    runner_log = work / "podrunner.log"
    with runner_log.open("wb") as log:
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hack.podrunner",
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                NAMESPACE,
                "--workdir",
                str(work / "pods"),
                "--log-dir",
                str(work / "logs"),
                "--ready-file",
                str(ready),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return _story(
            work=work,
            kubeconfig=kubeconfig,
            bin_dir=bin_dir,
            kubectl=kubectl,
            ready=ready,
            runner=runner,
        )
    finally:
        _say(f"stopping hack/podrunner and deleting the cluster {name}")
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=60)
        subprocess.run(["bash", "hack/testbed/cluster.sh", "down", name], cwd=ROOT, check=False)


def _story(
    *,
    work: Path,
    kubeconfig: Path,
    bin_dir: Path,
    kubectl: list[str],
    ready: Path,
    runner: subprocess.Popen[bytes],
) -> int:
    wait_for(lambda: ready.exists() or runner.poll() is not None, 60, "hack/podrunner to start")
    if runner.poll() is not None:
        sys.exit(f"demo: hack/podrunner exited; see {work / 'podrunner.log'}")

    _say("installing the Helm chart driftward (CRDs, RBAC, operator Deployment)")
    print(
        _run(
            str(bin_dir / "helm"),
            "--kubeconfig",
            str(kubeconfig),
            "install",
            "driftward",
            "charts/driftward",
            "--namespace",
            "driftward-system",
            "--create-namespace",
            "--set",
            "operator.replicas=1",
        ).split("NOTES:")[0]
    )
    _run(*kubectl, "wait", "--for=condition=Established", "crd/monitoredmodels.driftward.dev")
    _run(*kubectl, "create", "namespace", NAMESPACE)

    _say("training v1 and v2 of a classifier and writing its reference data")
    models = build_models(work)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    model = Model(api, NAMESPACE, "fraud")
    with run_operator(kubeconfig, NAMESPACE, work / "operator.log") as operator:
        _say(f"operator running (log {work / 'operator.log'}); deploying fraud v1")
        model.create(build_manifest("fraud", models, models.v1, replicas=2))
        wait_for(lambda: model.status().get("stableVersion") == "v1", 180, "v1 to be promoted")
        print(_run(*kubectl, "-n", NAMESPACE, "get", "mm", "fraud"))

        _say("deploying v2 (it serves as the candidate during its promotion window)")
        model.patch_spec({"model": models.v2.model, "policy": {"promotionWindow": "1h"}})
        ips = wait_for(lambda: model.ready_pod_ips(models.v2.sha256, 2), 180, "v2 pods Ready")
        print(_run(*kubectl, "-n", NAMESPACE, "get", "mm", "fraud"))

        _say(f"sending 800 in-distribution predictions to v2 at {', '.join(ips)}")
        send_predictions(ips, models.rows[:800])
        wait_for(lambda: model.status().get("drift", {}).get("state") == "Ok", 90, "drift Ok")
        _say("drifting the traffic: features f0 and f1 shift by 3 standard units")
        send_predictions(ips, models.rows[800:1800], shift=3.0)
        wait_for(lambda: model.served_digest() == models.v1.sha256, 120, "the rollback")
        wait_for(lambda: model.status().get("phase") == "RolledBack", 60, "phase RolledBack")

        _say("kubectl get mm: the automatic rollback to v1, and why")
        print(_run(*kubectl, "-n", NAMESPACE, "get", "mm", "fraud"))
        print(
            _run(
                *kubectl,
                "-n",
                NAMESPACE,
                "get",
                "mm",
                "fraud",
                "-o",
                "jsonpath={range .status.conditions[?(@.type=='RolledBack')]}"
                "RolledBack={.status} reason={.reason}\n{.message}\n{end}",
            )
        )
        events = ("get", "events", "--field-selector", "reason=DriftDetected")
        print(_run(*kubectl, "-n", NAMESPACE, *events))
        _say("where to look")
        v1_ips = wait_for(lambda: model.ready_pod_ips(models.v1.sha256, 2), 120, "v1 pods")
        print(
            f"  drift report (v1 pod):   http://{v1_ips[0]}:8081/report\n"
            f"  monitor metrics:         http://{v1_ips[0]}:9091/metrics\n"
            f"  serving metrics:         http://{v1_ips[0]}:9090/metrics\n"
            f"  operator metrics:        http://127.0.0.1:{operator.port}/metrics\n"
            f"  health analysis:         http://127.0.0.1:{operator.port}"
            f"/v1/analysis/{NAMESPACE}/fraud\n"
            f"  kubectl:                 export KUBECONFIG={kubeconfig} PATH={bin_dir}:$PATH\n"
            f"  logs:                    {work}"
        )
        if os.environ.get("DRIFTWARD_DEMO_EXIT") == "1":
            return 0
        _say("everything keeps running; press Ctrl-C to stop and delete the cluster")
        try:
            while operator.process.poll() is None and runner.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
