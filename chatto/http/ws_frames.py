"""WebSocket frames at the cost of a frame: encoded once, written coalesced.

``FrameCache`` keeps, per (envelope head, shared result), the frame's text
and its encoded server frame: a live event delivered to many sockets whose
operation ids are the same (every client of one app says ``"1"``) is
concatenated, UTF-8 encoded and framed once. ``FrameWriter`` is one
socket's outgoing queue: every frame queued while the socket is busy (or
within one scheduler pass) goes out in one ``send_all``, and the queue is
bounded in frames and bytes; ``push`` says when it would pass the bound, and
the caller closes the socket (1013). ``WriteStats`` counts writes against
frames for every socket of the process (``/metrics``, tests).
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict

import attrs
import trio

# Server frames are never masked (RFC 6455 §5.1); no extension is negotiated.
_TEXT = 0x81  # FIN + text opcode


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame around ``payload`` (UTF-8)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", _TEXT, 126, n) + payload
    return struct.pack("!BBQ", _TEXT, 127, n) + payload


class FrameCache:
    """A bounded LRU of (text, frame) by (head, result text object)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], tuple[str, str, bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, head: str, encoded: str) -> tuple[str, bytes]:
        """``head + encoded + "}"`` and its frame, built at most once while cached."""
        key = (head, id(encoded))
        hit = self._items.get(key)
        # Ids are reused after collection: the stored text must be the same object.
        if hit is not None and hit[0] is encoded:
            self.hits += 1
            return hit[1], hit[2]
        self.misses += 1
        text = head + encoded + "}"
        frame = text_frame(text.encode())
        self._items[key] = (encoded, text, frame)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return text, frame


FRAMES = FrameCache()


@attrs.define
class WriteStats:
    """Frames queued and ``send_all`` calls made, over all sockets."""

    frames: int = 0
    writes: int = 0
    bytes: int = 0


class FrameWriter:
    """One socket's bounded queue of encoded frames and the task that writes it.

    A frame pushed while the socket is idle is written at once, without a
    task switch (``os.write`` on the non-blocking socket: one syscall, the
    floor); what the kernel does not take, and every frame pushed while
    that remainder is pending, waits for ``serve`` to write it all in one
    ``send_all``. ``fd`` None: always through ``serve`` (streams without a
    socket, in tests).
    """

    def __init__(
        self,
        stream: trio.abc.SendStream,
        max_bytes: int,
        max_frames: int,
        stats: WriteStats,
        fd: int | None = None,
    ) -> None:
        self._stream = stream
        self._fd = fd
        self._max_bytes = max_bytes
        self._max_frames = max_frames
        self._stats = stats
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._sending = False
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._closing = False
        self.broken = False

    def push(self, data: bytes) -> bool:
        """Write or queue a frame (never blocks); False when the queue would pass its bound."""
        if self._closing or self.broken:
            return True  # nothing more goes out; not the reader's fault
        pending = self._pending
        if not pending and not self._sending and self._fd is not None:
            self._stats.frames += 1
            data = self._write_now(data)
            if not data:
                return True
        elif pending and (
            len(pending) >= self._max_frames or self._pending_bytes + len(data) > self._max_bytes
        ):
            return False
        else:
            self._stats.frames += 1
        pending.append(data)
        self._pending_bytes += len(data)
        if self._idle.is_set():
            self._idle = trio.Event()
        self._wake.set()
        return True

    def _write_now(self, data: bytes) -> bytes:
        """What the kernel did not take of ``data`` (b"" when all of it, or when broken)."""
        assert self._fd is not None
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            return data
        except OSError:
            self.broken = True  # the peer is gone: the reader notices and ends the socket
            return b""
        self._stats.writes += 1
        self._stats.bytes += n
        return data[n:]

    def push_last(self, data: bytes) -> None:
        """Queue the final frame (a close), even past the bound: then the unwritten
        backlog is dropped (a slow consumer resumes by paging) and only it goes."""
        if self._closing or self.broken:
            return
        if not self.push(data):
            self._pending, self._pending_bytes = [], 0
            self.push(data)
        self._closing = True

    async def wait_flushed(self) -> None:
        """Until everything queued has been written (or the socket broke)."""
        await self._idle.wait()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued frames, all that are queued at once, until the socket breaks."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            if not batch:
                self._idle.set()
                continue
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            self._sending = True
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.broken = True
                self._pending = []
                self._idle.set()
                return
            finally:
                self._sending = False
            self._stats.writes += 1
            self._stats.bytes += len(data)
            if not self._pending:
                self._idle.set()
