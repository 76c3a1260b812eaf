"""Responses leave in one write, byte for byte what uvicorn would have sent in two."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from driftward_serving.coalesce import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.unit.serving.conftest import free_port


class RecordingTransport:
    """Just enough of an asyncio transport to see what reaches the socket."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(("writelines", list(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _one_step() -> None:
    # call_soon callbacks scheduled before this point run before it returns.
    await asyncio.sleep(0)


def test_writes_of_one_loop_step_leave_in_one_write() -> None:
    async def scenario() -> RecordingTransport:
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.write(bytearray(b"body"))
        assert raw.calls == []
        assert transport.get_write_buffer_size() == 19 + 4 + 7
        await _one_step()
        transport.write(b"next")
        await _one_step()
        assert transport.get_extra_info("socket") == "info:socket"
        return raw

    raw = asyncio.run(scenario())
    assert raw.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody"), ("write", b"next")]


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        first = CoalescingTransport(closed, loop)  # type: ignore[arg-type]
        first.write(b"last words")
        first.close()
        second = CoalescingTransport(aborted, loop)  # type: ignore[arg-type]
        second.write(b"never sent")
        second.abort()
        await _one_step()
        return closed, aborted

    closed, aborted = asyncio.run(scenario())
    assert closed.calls == [("write", b"last words"), ("close", None)]
    assert aborted.calls == [("abort", None)]


def test_large_pieces_go_out_as_one_writelines_and_a_gone_peer_gets_nothing() -> None:
    big = b"x" * (100 * 1024)

    async def scenario() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        raw, gone = RecordingTransport(), RecordingTransport()
        transport = CoalescingTransport(raw, loop)  # type: ignore[arg-type]
        transport.writelines([b"head", big])
        late = CoalescingTransport(gone, loop)  # type: ignore[arg-type]
        late.write(b"too late")
        gone.closing = True  # the peer went away before the flush
        await _one_step()
        return raw, gone

    raw, gone = asyncio.run(scenario())
    assert raw.calls == [("writelines", [b"head", big])]
    assert gone.calls == []


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = f"{scope['method']} {scope['path']}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_response(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if head_only:
        return head
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def test_a_real_server_answers_keep_alive_and_head_requests() -> None:
    port = free_port()

    async def scenario() -> list[bytes]:
        config = uvicorn.Config(
            _app,
            host="127.0.0.1",
            port=port,
            http=CoalescingHttpToolsProtocol,
            lifespan="off",
            log_level="warning",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for path in ("/a", "/b", "/c"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answers.append(await asyncio.wait_for(_read_response(reader), 10))
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        answers.append(await asyncio.wait_for(_read_response(reader, head_only=True), 10))
        writer.write(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers.append(await asyncio.wait_for(reader.read(), 10))  # the server closes
        writer.close()
        server.should_exit = True
        await task
        return answers

    answers = asyncio.run(scenario())
    for path, answer in zip(("/a", "/b", "/c"), answers, strict=False):
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(f"\r\n\r\nGET {path}".encode())
    assert answers[3].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 7\r\n" in answers[3]
    assert answers[4].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in answers[4]
    assert answers[4].endswith(b"\r\n\r\nGET /bye")
