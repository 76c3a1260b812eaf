"""Send each HTTP response with one socket write instead of two.

uvicorn's httptools protocol writes a response's status line and headers as
soon as the app sends ``http.response.start``, and the body when it sends
``http.response.body``; uvloop sends each write at once, so a small response
costs two ``write`` syscalls and two TCP segments. At batch 1 that second
syscall is a measurable share of a request (see bench/serving).

``CoalescingHttpToolsProtocol`` is uvicorn's ``HttpToolsProtocol`` with its
transport wrapped in ``CoalescingTransport``, which holds the writes made
during one event-loop step and sends them together right after it (one
``loop.call_soon`` per burst). The bytes on the wire are the same, in the same
order. Anything that ends or inspects the connection (close, abort,
write_eof, the write buffer size) sends what is held first.

This module must not change what is written, only how many syscalls carry it,
and must not hold bytes past the current loop step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Above this, hand the pieces to writelines (one writev) instead of copying them.
_JOIN_LIMIT = 64 * 1024


class CoalescingTransport:
    """A transport proxy that merges the writes of one loop step into one."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` until the end of this loop step."""
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data) if not isinstance(data, bytes) else data)
        self._size += len(data)

    def writelines(self, data: Any) -> None:
        """Hold every piece of `data` until the end of this loop step."""
        for piece in data:
            self.write(piece)

    def flush(self) -> None:
        """Send what is held, in one write (or one writev for large pieces)."""
        pending = self._pending
        if not pending:
            return
        self._pending, size, self._size = [], self._size, 0
        if self._transport.is_closing():
            return  # the connection is gone; asyncio drops late writes the same way
        if len(pending) == 1:
            self._transport.write(pending[0])
        elif size <= _JOIN_LIMIT:
            self._transport.write(b"".join(pending))
        else:
            self._transport.writelines(pending)

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and abort, as the plain transport would drop its buffer."""
        self._pending, self._size = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        """Send what is held, then half-close."""
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        """Bytes held here plus the transport's own buffer."""
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response with one syscall."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport before uvicorn sees it."""
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)  # type: ignore[arg-type]
