"""The serving benchmark's interleaved rounds: the order, and moving a pod between cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

# A process with a second thread and a child of its own, as uvicorn and MLServer have.
POD = """
import subprocess, sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_rounds_alternate_so_every_configuration_averages_the_same_position(
    bench: ModuleType,
) -> None:
    assert bench.round_order(4, 1) == [0, 1, 2, 3]
    assert bench.round_order(4, 2) == [3, 2, 1, 0]
    assert bench.round_order(4, 3) == [0, 1, 2, 3]
    positions = [0] * 5
    for number in (1, 2):
        for position, index in enumerate(bench.round_order(5, number)):
            positions[index] += position
    assert positions == [4] * 5


def test_thread_cpu_counts_new_threads_whole_and_refuses_a_window_a_thread_left(
    bench: ModuleType,
) -> None:
    before = {1: 5_000_000_000, 2: 1_000_000_000}
    after = {1: 6_500_000_000, 2: 1_250_000_000, 3: 250_000_000}
    assert bench.compute_thread_cpu_seconds(before, after) == 2.0
    assert bench.compute_thread_cpu_seconds(before, {1: 6_000_000_000}) is None


def test_thread_cpu_is_read_in_ns_for_the_whole_tree(bench: ModuleType) -> None:
    pod = subprocess.Popen([sys.executable, "-c", POD], stdout=subprocess.PIPE, text=True)
    try:
        assert pod.stdout is not None
        child = int(pod.stdout.readline())
        threads = bench.read_thread_cpu_ns(pod.pid)
        # The main thread and the sleeping one, and the child's thread.
        assert {pod.pid, child} <= threads.keys()
        assert len(threads) == 3
        assert all(ns >= 0 for ns in threads.values())
        assert threads[pod.pid] > 0  # starting Python costs CPU
        assert bench.read_thread_cpu_ns(None) == {}
    finally:
        os.kill(child, signal.SIGKILL)
        pod.kill()
        pod.wait()


def test_a_tree_is_the_process_and_every_live_descendant(bench: ModuleType) -> None:
    table = {10: (1, 1.0), 11: (10, 2.0), 12: (11, 3.0), 13: (10, 4.0), 20: (1, 5.0)}
    assert sorted(bench._tree(10, table)) == [10, 11, 12, 13]
    assert bench._tree(12, table) == [12]
    assert bench._tree(99, table) == [99]  # gone already: only itself, with no CPU counted


def _affinities(pids: list[int]) -> set[frozenset[int]]:
    return {
        frozenset(os.sched_getaffinity(int(task.name)))
        for pid in pids
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


def test_pinning_a_pod_moves_every_thread_of_every_process(bench: ModuleType) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    pod = subprocess.Popen(
        [sys.executable, "-c", POD], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert pod.stdout is not None
        child = int(pod.stdout.readline())
        running = bench.Running(port=0, server_pid=pod.pid)
        assert len(list(Path(f"/proc/{pod.pid}/task").iterdir())) >= 2
        for cpu in (allowed[0], allowed[-1]):
            bench.pin_tree(running, str(cpu))
            assert _affinities([pod.pid, child]) == {frozenset({cpu})}
        bench.pin_tree(running, ",".join(map(str, allowed)))
        assert _affinities([pod.pid, child]) == {frozenset(allowed)}
    finally:
        os.killpg(pod.pid, signal.SIGKILL)
        pod.wait()
