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


class Flusher:
    """Writes the frames every socket queued, once per scheduler pass, one write each.

    A live event reaches every subscriber's task in one pass; each queues its
    frame (several, when it drains a backlog) and the flusher, woken once for
    all of them, then writes each socket's frames in one ``os.write``. An
    idle socket costs the one syscall it would have cost anyway; a socket
    with a backlog gets it in one write instead of one per frame.
    """

    def __init__(self) -> None:
        self._dirty: list[FrameWriter] = []
        self._wake = trio.Event()
        self.passes = 0

    def mark(self, writer: FrameWriter) -> None:
        if not self._dirty:
            self._wake.set()
        self._dirty.append(writer)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush marked writers until cancelled."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            dirty, self._dirty = self._dirty, []
            self.passes += 1
            for writer in dirty:
                writer.flush_now()


class FrameWriter:
    """One socket's bounded queue of encoded frames and the task that writes it.

    Frames queued while the socket is idle are written by the ``Flusher``
    with ``os.write`` on the non-blocking socket (no task of its own wakes);
    what the kernel does not take, and everything queued meanwhile, waits
    for ``serve``, which writes it all in one ``send_all`` once the socket
    drains. Without a flusher or ``fd`` (streams without a socket, in tests)
    everything goes through ``serve``. ``detach`` before the socket closes:
    a file descriptor number is reused by the next socket opened.
    """

    def __init__(
        self,
        stream: trio.abc.SendStream,
        max_bytes: int,
        max_frames: int,
        stats: WriteStats,
        fd: int | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        self._stream = stream
        self._fd = fd if flusher is not None else None
        self._flusher = flusher
        self._max_bytes = max_bytes
        self._max_frames = max_frames
        self._stats = stats
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._marked = False  # waiting for the flusher
        self._sending = False  # serve() owns the queue until the socket drains
        self._wake = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._closing = False
        self.broken = False

    def push(self, data: bytes) -> bool:
        """Queue a frame (never blocks); False when the queue would pass its bound."""
        if self._closing or self.broken:
            return True  # nothing more goes out; not the reader's fault
        pending = self._pending
        if pending and (
            len(pending) >= self._max_frames or self._pending_bytes + len(data) > self._max_bytes
        ):
            return False
        pending.append(data)
        self._pending_bytes += len(data)
        self._stats.frames += 1
        if self._idle.is_set():
            self._idle = trio.Event()
        if self._marked:
            return True
        if self._flusher is not None and self._fd is not None and not self._sending:
            self._marked = True
            self._flusher.mark(self)
        else:
            self._wake.set()
        return True

    def flush_now(self) -> None:
        """Write the queue with one syscall; what the kernel leaves goes to ``serve``."""
        self._marked = False
        if self.broken or self._fd is None or not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._broke()  # the peer is gone: the reader notices and ends the socket
            return
        if n:
            self._stats.writes += 1
            self._stats.bytes += n
        if n == len(data):
            self._pending, self._pending_bytes = [], 0
            self._idle.set()
        else:
            self._pending, self._pending_bytes = [data[n:]], len(data) - n
            self._wake.set()

    def detach(self) -> None:
        """Write nothing more to this socket (it is about to close)."""
        self._fd = None
        self._broke()

    def _broke(self) -> None:
        self.broken = True
        self._pending, self._pending_bytes = [], 0
        self._idle.set()

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
        """Write what the flusher could not (or everything, without one), all at once."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self._marked or self.broken:
                continue
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            if not batch:
                self._idle.set()
                continue
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            self._sending = True
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._broke()
                return
            finally:
                self._sending = False
            self._stats.writes += 1
            self._stats.bytes += len(data)
            if self._pending:
                self._wake.set()  # queued meanwhile: written next, together
            else:
                self._idle.set()
