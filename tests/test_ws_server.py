"""Chatto's own WebSocket path (``chatto/http/ws_server.py``, ``listener.py``).

The protocol behaviour is the existing WebSocket suite's, which runs on this
path by default; here what is new: frames queued while a socket is busy go
out several per write, in order; a socket whose queue passes its bound is
closed with 1013 while the others carry on; connections that are not a
GraphQL upgrade (an upgrade after an HTTP request on a kept-alive
connection) still reach Hypercorn; the size, origin and shutdown rules hold
here (the frame counters prove which path served them); and the frame
encoding and writer on their own.
"""

from __future__ import annotations

import json
import socket

import pytest
import trio
import trio.testing
from trio_websocket import open_websocket_url
from wsproto.events import AcceptConnection, RejectConnection
from wsproto.frame_protocol import FrameProtocol

from actors.server import SetServerProfile
from chatto.http.ws_frames import Flusher, FrameCache, FrameWriter, WriteStats, text_frame
from tests.conftest import ConfigFactory, ServerHandle, start_server
from tests.wsraw import RawWs, open_socket

SERVER_EVENTS = "subscription { serverEvents { type seq } }"
# A large result (tens of KiB): a few of them fill a small receive window.
BIG = "{ __schema { types { name description fields { name description } } } }"
PROTOCOL = "graphql-transport-ws"


def port_of(handle: ServerHandle) -> int:
    return int(handle.url.rsplit(":", 1)[1])


def closes(handle: ServerHandle, code: str) -> float:
    registry = handle.running.services.metrics.registry
    labels = {"protocol": PROTOCOL, "code": code}
    return registry.get_sample_value("chatto_websocket_closes_total", labels) or 0.0


async def live_raw(handle: ServerHandle, rcvbuf: int | None = None) -> RawWs:
    """A raw socket, acked and subscribed to serverEvents as ``live``."""
    ws = RawWs(await open_socket(port_of(handle), rcvbuf))
    assert isinstance(await ws.upgrade(), AcceptConnection)
    await ws.send(type="connection_init", payload={})
    assert (await ws.recv())["type"] == "connection_ack"
    await ws.send(id="live", type="subscribe", payload={"query": SERVER_EVENTS})
    return ws


async def wait_subscribers(handle: ServerHandle, n: int) -> None:
    while handle.running.services.hub.subscriber_count("server") < n:
        await trio.sleep(0.01)


async def rename(handle: ServerHandle, count: int) -> list[int]:
    """``count`` server events; their sequence numbers."""
    actors = handle.running.services.actors
    seqs = []
    for i in range(count):
        done = await actors.ask("server", "", SetServerProfile(f"Server {i}"))
        seqs.append(done.last_seq)
    return seqs


async def test_a_busy_socket_gets_every_frame_in_order_several_per_write(
    chatto: ServerHandle,
) -> None:
    stats = chatto.running.services.metrics.ws_writes
    with trio.fail_after(60):
        ws = await live_raw(chatto, rcvbuf=4096)
        await wait_subscribers(chatto, 1)
        frames0, writes0 = stats.frames, stats.writes
        for i in range(6):  # not read yet: the server's socket fills up
            await ws.send(id=f"q{i}", type="subscribe", payload={"query": BIG})
        await trio.sleep(0.5)
        seqs = await rename(chatto, 200)
        live: list[int] = []
        done: set[str] = set()
        while len(live) < len(seqs) or len(done) < 6:
            msg = await ws.recv()
            if msg.get("id") == "live":
                live.append(msg["payload"]["data"]["serverEvents"]["seq"])
            elif msg["type"] == "complete":
                done.add(msg["id"])
        assert live == seqs
        frames, writes = stats.frames - frames0, stats.writes - writes0
        assert frames >= 200 + 12
        assert frames >= 3 * writes, (frames, writes)


async def test_a_reader_that_never_reads_is_closed_with_1013_and_others_continue(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    handle = await start_server(
        nursery,
        make_config(
            CHATTO_WEBSERVER_WEBSOCKET_SEND_BUFFER_FRAMES="16",
            CHATTO_WEBSERVER_WEBSOCKET_SEND_BUFFER_BYTES="65536",
        ),
    )
    url = handle.url.replace("http://", "ws://") + "/api/graphql"
    with trio.fail_after(60):
        stuck = await live_raw(handle, rcvbuf=4096)
        async with open_websocket_url(url, subprotocols=[PROTOCOL]) as ok:
            await ok.send_message(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ok.get_message())["type"] == "connection_ack"
            sub = {"id": "s", "type": "subscribe", "payload": {"query": SERVER_EVENTS}}
            await ok.send_message(json.dumps(sub))
            await wait_subscribers(handle, 2)
            for i in range(6):
                await stuck.send(id=f"q{i}", type="subscribe", payload={"query": BIG})
            await trio.sleep(0.5)
            seqs = await rename(handle, 100)
            got = []
            while len(got) < len(seqs):
                msg = json.loads(await ok.get_message())
                got.append(msg["payload"]["data"]["serverEvents"]["seq"])
            assert got == seqs
            while closes(handle, "1013") < 1:
                await trio.sleep(0.01)
            metrics = handle.running.services.metrics.registry
            assert metrics.get_sample_value("chatto_slow_subscriber_closes_total") == 1
        # Reading now, it gets what was already on its way, then the close.
        with pytest.raises(EOFError) as info:
            while True:
                await stuck.recv()
        assert info.value.args[0] == 1013
        assert stuck.close is not None and stuck.close.reason == "Slow consumer"
    await handle.stop()


async def test_an_upgrade_after_an_http_request_on_one_connection(chatto: ServerHandle) -> None:
    with trio.fail_after(20):
        stream = await open_socket(port_of(chatto))
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += await stream.receive_some(4096)
        assert json.loads(body) == {"status": "ok"}
        ws = RawWs(stream)  # the same connection, now upgraded (Hypercorn's path)
        assert isinstance(await ws.upgrade(), AcceptConnection)
        await ws.send(type="connection_init", payload={})
        assert (await ws.recv())["type"] == "connection_ack"
        await ws.send(id="q", type="subscribe", payload={"query": "{ server { name } }"})
        assert (await ws.recv())["type"] == "next"


async def test_request_id_size_origin_and_shutdown_rules_on_this_path(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    handle = await start_server(nursery, make_config())
    stats = handle.running.services.metrics.ws_writes
    with trio.fail_after(30):
        bad = RawWs(await open_socket(port_of(handle)))
        refused = await bad.upgrade([(b"origin", b"https://evil.example")])
        assert isinstance(refused, RejectConnection) and refused.status_code == 403
        plain = RawWs(await open_socket(port_of(handle)))
        accepted = await plain.upgrade()
        assert isinstance(accepted, AcceptConnection)
        assert len(dict(accepted.extra_headers).get(b"x-request-id", b"")) >= 8
        big = await live_raw(handle)
        await big.send(id="x", type="subscribe", payload={"query": "x" * (1024 * 1024)})
        with pytest.raises(EOFError) as info:
            while True:
                await big.recv()
        assert info.value.args[0] == 1009
        held = await live_raw(handle)
        await wait_subscribers(handle, 1)
        assert stats.frames > 0  # these sockets were served by chatto/http/ws_server.py
        handle.shutdown.set()
        with pytest.raises(EOFError) as info:
            while True:
                await held.recv()
        assert info.value.args[0] == 1001
        assert held.close is not None and held.close.reason == "Server shutting down"
        await handle.stopped.wait()


async def test_hypercorn_path_still_available(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    handle = await start_server(nursery, make_config(CHATTO_WEBSERVER_WEBSOCKET_SERVER="hypercorn"))
    with trio.fail_after(20):
        ws = await live_raw(handle)
        await wait_subscribers(handle, 1)
        seqs = await rename(handle, 3)
        got = [(await ws.recv())["payload"]["data"]["serverEvents"]["seq"] for _ in seqs]
        assert got == seqs
        assert handle.running.services.metrics.ws_writes.frames == 0
    await handle.stop()


def test_text_frames_match_wsproto() -> None:
    proto = FrameProtocol(client=False, extensions=[])
    for n in (0, 125, 126, 65535, 65536, 200_000):
        text = "é" * (n // 2) + "x" * (n % 2)
        assert text_frame(text.encode()) == proto.send_data(text, fin=True)


def test_frame_cache_builds_once_per_head_and_result() -> None:
    cache = FrameCache(size=2)
    result = json.dumps({"data": {"n": 1}})
    head = '{"id":"1","type":"next","payload":'
    text, frame = cache.get(head, result)
    assert json.loads(text)["payload"] == {"data": {"n": 1}}
    assert cache.get(head, result)[1] is frame
    assert cache.get(head.replace('"1"', '"2"'), result)[1] is not frame
    other = json.dumps({"data": {"n": 1}})  # equal text, another result object
    assert cache.get(head, other)[1] is not frame
    assert (cache.hits, cache.misses) == (1, 3)


async def test_writer_coalesces_while_busy_and_bounds_its_queue() -> None:
    send, receive = trio.testing.lockstep_stream_pair()
    stats = WriteStats()
    writer = FrameWriter(send, max_bytes=1000, max_frames=5, stats=stats)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.serve)
            assert writer.push(b"a")
            await trio.testing.wait_all_tasks_blocked()  # "a" is being written
            assert all(writer.push(bytes([c])) for c in b"bcdef")
            assert not writer.push(b"g")  # a sixth frame waiting: over the bound
            assert await receive.receive_some() == b"a"
            assert await receive.receive_some() == b"bcdef"  # one write
            await trio.testing.wait_all_tasks_blocked()
            assert (stats.frames, stats.writes) == (6, 2)
            assert writer.push(b"h")
            await trio.testing.wait_all_tasks_blocked()
            for c in b"ijklm":
                writer.push(bytes([c]))
            writer.push_last(b"CLOSE")  # past the bound: the backlog gives way
            assert writer.push(b"after") is True  # ignored once closing
            assert await receive.receive_some() == b"h"
            assert await receive.receive_some() == b"CLOSE"
            await writer.wait_flushed()
            nursery.cancel_scope.cancel()


async def test_flusher_writes_what_one_pass_queued_in_one_write() -> None:
    a, b = socket.socketpair()
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    stats, flusher = WriteStats(), Flusher()
    writer = FrameWriter(stream, 1 << 20, 100, stats, a.fileno(), flusher)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(flusher.serve)
            await nursery.start(writer.serve)
            for c in b"abc":  # one task's backlog, drained in one pass
                assert writer.push(bytes([c]))
            await writer.wait_flushed()
            assert b.recv(16) == b"abc"
            assert (stats.frames, stats.writes, flusher.passes) == (3, 1, 1)
            writer.detach()
            assert writer.push(b"d") and stats.frames == 3  # nothing after detach
            nursery.cancel_scope.cancel()
    await stream.aclose()
    b.close()
