"""A real SMTP sink for tests and the load test: Trio, loopback, keeps what it accepts.

Speaks enough of RFC 5321 for smtplib (EHLO/HELO, MAIL, RCPT, DATA with
dot-stuffing, RSET, NOOP, QUIT); no TLS and no auth, which the test config
turns off. Messages are kept in memory: size runs accordingly.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import attrs
import trio


@attrs.define
class SmtpSink:
    port: int = 0
    messages: list[EmailMessage] = attrs.Factory(list)
    arrived: trio.Event = attrs.Factory(trio.Event)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    async def wait_for(self, address: str, count: int = 1) -> list[EmailMessage]:
        """Wait until ``count`` messages to ``address`` arrived (caller sets the deadline)."""
        while len(self.to(address)) < count:
            await self.arrived.wait()  # many waiters may share it: only the sink replaces it
        return self.to(address)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._session, listeners)

    async def _session(self, stream: trio.SocketStream) -> None:
        buf = b""

        async def line() -> bytes:
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    raise trio.EndOfChannel
                buf += chunk
            out, buf = buf.split(b"\r\n", 1)
            return out

        async def reply(text: str) -> None:
            await stream.send_all(text.encode() + b"\r\n")

        try:
            await reply("220 sink ESMTP")
            while True:
                cmd = (await line()).decode(errors="replace")
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    await reply("250-sink\r\n250 8BITMIME")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while (data := await line()) != b".":
                        lines.append(data[1:] if data.startswith(b"..") else data)
                    raw = b"\r\n".join(lines)
                    msg = email.message_from_bytes(raw, policy=email.policy.default)
                    self.messages.append(msg)
                    self.arrived.set()
                    self.arrived = trio.Event()
                    await reply("250 queued")
                elif verb == "QUIT":
                    await reply("221 bye")
                    return
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    await reply("250 ok")
        except (trio.EndOfChannel, trio.BrokenResourceError):
            return
