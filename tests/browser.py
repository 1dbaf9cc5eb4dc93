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
        res = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return res.get("result", {}).get("value")

    async def load(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def wait_js(self, expression: str, within: float = 15) -> Any:
        """Poll ``expression`` until it is truthy (for ``within`` seconds); its value."""
        with trio.fail_after(within):
            while True:
                value = await self.js(expression)
                if value:
                    return value
                await trio.sleep(0.05)

    async def insert_text(self, text: str) -> None:
        """Type into the focused element (as an IME commit: one input event)."""
        await self.call("Input.insertText", text=text)

    async def press(self, key: str, code: str = "", modifiers: int = 0) -> None:
        """A key press (``Enter``, ``ArrowUp``; modifiers: 8 is Shift)."""
        vk = {"Enter": 13, "ArrowUp": 38, "ArrowDown": 40, "Escape": 27, "Tab": 9}.get(key, 0)
        base = {
            "key": key,
            "code": code or key,
            "modifiers": modifiers,
            "windowsVirtualKeyCode": vk,
        }
        text = {"Enter": "\r"}.get(key)
        await self.call(
            "Input.dispatchKeyEvent", type="keyDown", **base, **({"text": text} if text else {})
        )
        await self.call("Input.dispatchKeyEvent", type="keyUp", **base)

    async def drain(self) -> None:
        """Read the events the browser has sent so far (console, network)."""
        while True:
            with trio.move_on_after(0.05):
                self.events.append(json.loads(await self.ws.get_message()))
                continue
            return

    async def problems(self, statuses: tuple[int, ...] = ()) -> list[str]:
        """Console errors, uncaught exceptions and CSP violations seen so far.

        ``statuses``: HTTP refusals the test provoked on purpose (a wrong
        password's 401), which Chromium logs as failed resource loads.
        """
        await self.drain()
        out: list[str] = []
        for ev in self.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                text = params["entry"].get("text", "")
                if not any(f"status of {status} " in text for status in statuses):
                    out.append(text[:500])
        return out

    async def screenshot(self, path: str) -> None:
        import base64

        shot = await self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:  # noqa: ASYNC230
            f.write(base64.b64decode(shot["data"]))

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )


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
            await page.call("Runtime.enable")
            await page.call("Log.enable")
            yield page
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
