"""Machine-readable logs and request ids.

JSON lines carry time, level, logger, message and the request id of the
request being served; responses carry ``X-Request-Id`` and error bodies the
same id, so a user's report finds the log line. The secret scans that run
on text logs elsewhere run on JSON output here too.
"""

from __future__ import annotations

import io
import json
import logging
import re

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from chatto.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, TextFormatter
from tests.conftest import ConfigFactory, ServerHandle, start_server

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _handler(fmt: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(fmt)
    handler.addFilter(RequestIdFilter())
    return handler, out


async def test_json_lines_carry_the_request_id_into_tasks_and_threads() -> None:
    handler, out = _handler(JsonFormatter())
    log = logging.getLogger("chatto.test_logs")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        with trio.fail_after(5):
            log.info("outside any request")
            token = REQUEST_ID.set("req-0123456789")
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.to_thread.run_sync, log.warning, "in a thread\nline 2")
                    nursery.start_soon(_log_in_task, log)
                try:
                    raise ValueError("boom")
                except ValueError:
                    log.exception("with a traceback")
            finally:
                REQUEST_ID.reset(token)
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    docs = [json.loads(line) for line in lines]  # every line is one object
    assert len(docs) == 4
    assert "request_id" not in docs[0] and docs[0]["message"] == "outside any request"
    for doc in docs[1:]:
        assert doc["request_id"] == "req-0123456789"
        assert doc["logger"] == "chatto.test_logs" and ISO_MS.fullmatch(doc["time"])
    by_message = {d["message"]: d for d in docs}
    assert by_message["in a thread\nline 2"]["level"] == "WARNING"
    assert "ValueError: boom" in by_message["with a traceback"]["exception"]


async def _log_in_task(log: logging.Logger) -> None:
    log.debug("in a task")


def test_text_lines_name_the_request_after_the_message() -> None:
    record = logging.LogRecord("chatto.x", logging.INFO, __file__, 1, "hello", (), None)
    record.request_id = "abc123abc123"
    assert TextFormatter().format(record).endswith("chatto.x: hello [request abc123abc123]")


async def test_request_ids_on_responses_error_bodies_and_the_log(
    chatto: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RequestIdFilter())
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=chatto.url, timeout=10) as c:
            ok = await c.get("/healthz")
            ids = {ok.headers["x-request-id"]}
            missing = await c.get("/nope")
            rid = missing.headers["x-request-id"]
            assert missing.json()["errors"][0]["extensions"]["requestId"] == rid
            bad = await c.post("/api/graphql", json={"query": "{ viewer { id } }"})
            error = bad.json()["errors"][0]
            assert error["extensions"] == {
                "code": "UNAUTHENTICATED",
                "requestId": bad.headers["x-request-id"],
            }
            ids |= {rid, bad.headers["x-request-id"]}
            # A client cannot choose its id (it would go into the logs) ...
            mine = await c.get("/healthz", headers={"x-request-id": "chosen-by-client"})
            assert mine.headers["x-request-id"] != "chosen-by-client"
            ids.add(mine.headers["x-request-id"])
        assert len(ids) == 4  # one per request
        url = chatto.url.replace("http://", "ws://") + "/api/graphql"
        async with open_websocket_url(url, subprotocols=["graphql-ws"]) as ws:
            headers = dict(ws.handshake_headers)
            assert re.fullmatch(rb"[0-9a-f]{16}", headers[b"x-request-id"])
    # ... and the failed request's log line carries the id its client saw.
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == rid]
    assert any("GET other answered 404" in r.getMessage() for r in lines)
    doc = json.loads(JsonFormatter().format(lines[0]))
    assert doc["request_id"] == rid


async def test_a_trusted_proxy_may_pass_its_request_id(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    handle = await start_server(
        nursery, make_config(CHATTO_WEBSERVER_TRUSTED_PROXIES="127.0.0.0/8")
    )
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=handle.url) as c:
            r = await c.get("/nope", headers={"x-request-id": "proxy-id-42abc"})
            assert r.headers["x-request-id"] == "proxy-id-42abc"
            assert r.json()["errors"][0]["extensions"]["requestId"] == "proxy-id-42abc"
            # Still only a plain token: anything else is replaced.
            r = await c.get("/nope", headers={"x-request-id": "bad id <script>"})
            assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])
    await handle.stop()
