"""driftward's Kubernetes operator: MonitoredModel resources in, serving Deployments out.

Layers, from pure to effectful: ``api`` (names and constants), ``conditions``,
``lifecycle`` and ``children`` (pure functions over plain data), ``kube`` (the
only module that talks to the Kubernetes API), ``reconcile`` (reads, computes,
applies, writes status once) and ``handlers`` (kopf registration only).
"""
