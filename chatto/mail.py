"""Outgoing mail: SMTP when configured, a clearly marked console mailer otherwise.

Mail is queued on a bounded outbox and sent by one background task, so an
HTTP answer never waits on (or is timed by) an SMTP transaction: the
registration and reset endpoints answer identically whether or not a mail
goes out. A full outbox drops the mail with a warning (never the address).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
from email.message import EmailMessage
from typing import Protocol, TextIO

import attrs
import trio

from chatto.config import SmtpConfig

log = logging.getLogger(__name__)


@attrs.frozen
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class ConsoleMailer:
    """Development mailer: prints the mail to stderr, clearly marked, not to the log."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, mail: Mail) -> None:
        out = self._stream or sys.stderr
        banner = "=" * 20 + " DEVELOPMENT MAIL (smtp.enabled = false) " + "=" * 20
        head = f"{banner}\nTo: {mail.to}\nSubject: {mail.subject}\n\n"
        print(head + mail.body + "\n" + "=" * len(banner), file=out, flush=True)


class SmtpMailer:
    """Sends through a real SMTP server (smtplib in a worker thread)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._limiter = trio.CapacityLimiter(2)
        # Built once: loading the system's CA certificates took ~25 ms per
        # mail, most of a sign-up burst's CPU. Only when TLS is used.
        self._tls = ssl.create_default_context() if config.ssl or config.starttls else None

    def _send_sync(self, mail: Mail) -> None:
        c = self._config
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = c.from_address, mail.to, mail.subject
        msg.set_content(mail.body)
        context = self._tls
        smtp: smtplib.SMTP
        if c.ssl:
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
        with smtp:
            if c.starttls and not c.ssl:
                smtp.starttls(context=context)
            if c.username:
                smtp.login(c.username, c.password)
            smtp.send_message(msg)

    async def send(self, mail: Mail) -> None:
        await trio.to_thread.run_sync(self._send_sync, mail, limiter=self._limiter)


class Outbox:
    """Bounded queue of mail plus the task that drains it."""

    def __init__(self, mailer: Mailer, capacity: int = 1000) -> None:
        self._mailer = mailer
        self._send, self._receive = trio.open_memory_channel[Mail](capacity)
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def enqueue(self, mail: Mail) -> None:
        """Queue without waiting; drop (and count) when full."""
        try:
            self._send.send_nowait(mail)
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("mail outbox is full; a mail was dropped")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for mail in self._receive:
            try:
                with trio.fail_after(60):
                    await self._mailer.send(mail)
                self.sent += 1
            except (OSError, smtplib.SMTPException, trio.TooSlowError) as exc:
                self.failed += 1
                log.error("sending mail failed: %s", type(exc).__name__)


def make_mailer(config: SmtpConfig) -> Mailer:
    return SmtpMailer(config) if config.enabled else ConsoleMailer()
