"""podrunner: the test cluster's stand-in container runtime (a tiny kubelet).

On a kwok cluster started in podrunner mode (``DRIFTWARD_TESTBED_PODRUNNER=1
hack/testbed/cluster.sh up``), kwok gives each pod a loopback IP and nothing
else. podrunner runs each pod's containers as local processes bound to that IP,
probes them for real, and writes the pod's phase, container states and
Ready/ContainersReady conditions from what it observes. Only the container
runtime is faked: no image is pulled and no isolation is applied.

Layers: ``spec`` and ``status`` are pure (pod dict in, plan or status out);
``probes`` and ``supervisor`` run processes and probes; ``kube`` is the only
module that talks to the API server; ``cli`` wires them together. This package
is test tooling: nothing in the product may import it.
"""
