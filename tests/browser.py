"""A headless Chromium driven over the DevTools protocol with trio-websocket."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@attrs.define
class Page:
    ws: WebSocketConnection
    ids: Any = attrs.Factory(lambda: itertools.count(1))
    events: list[dict[str, Any]] = attrs.Factory(list)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self.ids)
        await self.ws.send_message(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.get_message())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})  # type: ignore[no-any-return]
            self.events.append(msg)

    async def wait_event(self, method: str, pred: Any = lambda p: True) -> dict[str, Any]:
        while True:
            for ev in self.events:
                if ev.get("method") == method and pred(ev.get("params", {})):
                    self.events.remove(ev)
                    return ev["params"]  # type: ignore[no-any-return]
            self.events.append(json.loads(await self.ws.get_message()))

    async def js(self, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    async def load(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")


@asynccontextmanager
async def open_page(extra_flags: Sequence[str] = ()) -> AsyncIterator[Page]:
    exe = chromium()
    assert exe is not None
    profile = tempfile.mkdtemp(prefix="chatto-chromium-")
    # Started once per test; its stderr is read line by line in a worker thread.
    proc = subprocess.Popen(  # noqa: ASYNC220
        [exe, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        port = None
        with trio.fail_after(30):
            while port is None:
                line = (await trio.to_thread.run_sync(proc.stderr.readline)).decode(
                    errors="replace"
                )
                if not line:
                    raise RuntimeError("chromium exited")
                if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                    port = int(m.group(1))
        async with httpx.AsyncClient() as c:
            targets = (await c.get(f"http://127.0.0.1:{port}/json/list")).json()
        page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with open_websocket_url(page_url, max_message_size=64 * 1024 * 1024) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Network.enable")
            yield page
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
