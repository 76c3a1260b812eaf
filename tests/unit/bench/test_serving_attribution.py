"""The serving benchmark's CPU attribution: py-spy samples in the hand-off's code."""

from __future__ import annotations

from types import ModuleType

import pytest

ROOT = (
    "<module> (driftward-serving:6);run_server (driftward_serving/runner.py:75);"
    "Server.run (uvicorn/server.py:86);run (asyncio/runners.py:190)"
)
THREAD = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"
# py-spy's raw format: one stack per line, root first, then the sample count.
RAW = "\n".join(
    [
        f"{ROOT};handle_infer (driftward_serving/app.py:339) 70",
        f"{ROOT};RecordSender.flush (driftward_serving/handoff.py:287);"
        "build_record_batch (driftward_serving/recordbatch.py:101) 3",
        f"{ROOT};_predict (driftward_serving/app.py:383);"
        "RecordBuffer.offer_predictions (driftward_serving/handoff.py:125) 2",
        f"{ROOT};HttpToolsProtocol.data_received (uvicorn/protocols/http/httptools_impl.py:174) 24",
        # aiohttp's own task writing a POST's body: the hand-off's, with no hand-off frame.
        f"{ROOT};ClientRequest.write_bytes (aiohttp/client_reqrep.py:1594) 1",
        # Waiting threads py-spy does not recognise as idle: not the event loop's time.
        f"{THREAD};BaseServer.serve_forever (socketserver.py:233) 90",
        f"{THREAD};_worker (concurrent/futures/thread.py:81) 90",
    ]
)


def test_share_counts_event_loop_stacks_with_a_handoff_frame(bench: ModuleType) -> None:
    assert bench.handoff_share(RAW) == pytest.approx(6 / 100)
    assert bench.handoff_share(RAW.splitlines()[0] + "\n") == 0.0


def test_no_samples_is_an_error_not_zero(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="no samples of the event loop"):
        bench.handoff_share("")
    with pytest.raises(ValueError, match="no samples of the event loop"):
        bench.handoff_share(f"{THREAD};_worker (concurrent/futures/thread.py:81) 90\n")


def test_cpu_cost_adds_the_sidecar_to_the_servers_share(bench: ModuleType) -> None:
    result = bench.Result(
        name="x",
        requests_per_second=4_000.0,
        p50_ms=7.0,
        p99_ms=12.0,
        errors=0,
        server_cores=0.97,
        sidecar_cores=0.03,
        handoff_share=0.01,
    )
    assert result.cpu_cost == pytest.approx((0.01 * 0.97 + 0.03) / 1.0)
    no_profile = bench.Result("x", 4_000.0, 7.0, 12.0, 0, 1.0, 0.0)
    assert no_profile.cpu_cost is None
