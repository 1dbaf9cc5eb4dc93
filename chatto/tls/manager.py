"""``CertManager``: the certificate of the HTTPS listener, from start to renewal.

At start it loads the cached bundle; with none (or one due for renewal) it
orders a new one. Without any certificate it cannot serve HTTPS, so a failed
first order stops the start with one ``StartupError`` line; with a cached
certificate a failed order is logged and the cached one is served. Then
``serve`` keeps the certificate fresh: it sleeps until ``renew_before``
ahead of expiry (waking at least hourly, so a suspended machine or a clock
change cannot oversleep), orders, stores and swaps the new certificate into
the live ``ssl.SSLContext``, and after a failure tries again after
``retry_seconds``. ACME runs in one worker thread at a time.
"""

from __future__ import annotations

import datetime
import functools
import logging
import ssl
from pathlib import Path

import attrs
import trio

from chatto.config import Config
from chatto.errors import AcmeError, StartupError
from chatto.tls.acme_client import AcmeSettings, obtain_certificate
from chatto.tls.cache import CertCache, CertInfo, check_bundle
from chatto.tls.challenge import ChallengeTokens
from chatto.tls.context import make_server_context

log = logging.getLogger(__name__)

# Longest single sleep: wall-clock deadlines are re-read at least this often.
MAX_SLEEP = 3600.0


@attrs.frozen
class TlsSettings:
    acme: AcmeSettings
    cache_dir: Path
    renew_before: datetime.timedelta
    retry_seconds: float

    @classmethod
    def from_config(cls, config: Config) -> TlsSettings:
        t = config.webserver.tls
        acme = AcmeSettings(
            directory=t.acme_directory,
            domain=t.domain.rstrip(".").lower(),
            email=t.email,
            ca_bundle=config.tls_ca_bundle,
        )
        return cls(
            acme=acme,
            cache_dir=config.tls_cache_dir,
            renew_before=datetime.timedelta(days=t.renew_before_days),
            retry_seconds=t.retry_seconds,
        )


@attrs.frozen
class TlsStatistics:
    serial: int | None
    not_after: datetime.datetime | None
    renewals: int
    failures: int
    last_error: str | None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CertManager:
    """Owns the live server ``ssl.SSLContext`` and the certificate in it."""

    def __init__(self, settings: TlsSettings, tokens: ChallengeTokens | None = None) -> None:
        self.settings = settings
        self.tokens = tokens or ChallengeTokens()
        self.context: ssl.SSLContext = make_server_context()
        self.cache = CertCache(settings.cache_dir, settings.acme.domain)
        self.current: CertInfo | None = None
        self._retry_at: datetime.datetime | None = None
        self._lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(1)
        self._wake = trio.Event()
        self._renewals = 0
        self._failures = 0
        self._last_error: str | None = None

    @property
    def domain(self) -> str:
        return self.settings.acme.domain

    def statistics(self) -> TlsStatistics:
        c = self.current
        return TlsStatistics(
            serial=c.serial if c else None,
            not_after=c.not_after if c else None,
            renewals=self._renewals,
            failures=self._failures,
            last_error=self._last_error,
        )

    async def serve(
        self, *, task_status: trio.TaskStatus[CertInfo] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Have a certificate in the context, report it, then keep it fresh forever."""
        await trio.to_thread.run_sync(self.cache.prepare)
        cached = await trio.to_thread.run_sync(self.cache.load)
        if cached is not None:
            self._install(cached)
            log.info(
                "TLS: using the cached certificate for %s (serial %x, expires %s)",
                self.domain,
                cached.serial,
                _day(cached.not_after),
            )
        if cached is None or self._seconds_until_due() <= 0:
            try:
                await self.renew_now()
            except AcmeError as exc:
                if self.current is None:
                    raise StartupError(f"no TLS certificate yet: {exc.message}") from None
                self._failed(exc, "serving the cached certificate")
        assert self.current is not None
        task_status.started(self.current)
        await self._keep_fresh()

    async def renew_now(self) -> CertInfo:
        """Order a certificate now and swap it in; ``AcmeError`` if the order fails.

        The listener keeps serving throughout: open connections keep the
        certificate they started with, new handshakes get the new one.
        """
        async with self._lock:
            try:
                info = await self._order()
            except AcmeError as exc:
                self._failures += 1
                self._last_error = exc.message
                raise
            self._install(info)
            self._renewals += 1
            self._retry_at = None
            self._last_error = None
            log.info(
                "TLS: new certificate for %s (serial %x, expires %s)",
                self.domain,
                info.serial,
                _day(info.not_after),
            )
            return info

    async def _order(self) -> CertInfo:
        try:
            account_key = await trio.to_thread.run_sync(self.cache.account_key)
        except OSError as exc:
            raise AcmeError(
                f"cannot read or create the ACME account key in {self.cache.root}: {exc.strerror}"
            ) from None
        order = functools.partial(
            obtain_certificate,
            self.settings.acme,
            account_key,
            self.tokens,
            trio.from_thread.check_cancelled,
        )
        # Abandoned on cancel: the thread ends at its next checkpoint or
        # network timeout and its result is dropped (nothing written yet).
        key_pem, chain_pem = await trio.to_thread.run_sync(
            order, limiter=self._limiter, abandon_on_cancel=True
        )
        try:
            return await trio.to_thread.run_sync(self.cache.store, key_pem, chain_pem)
        except (OSError, ssl.SSLError) as exc:
            raise AcmeError(f"cannot store the new certificate for {self.domain}: {exc}") from exc

    def _install(self, info: CertInfo) -> None:
        check_bundle(info.path)
        self.context.load_cert_chain(info.path)
        self.current = info
        wake, self._wake = self._wake, trio.Event()
        wake.set()

    def _failed(self, exc: AcmeError, keeping: str) -> None:
        self._retry_at = _now() + datetime.timedelta(seconds=self.settings.retry_seconds)
        expires = _day(self.current.not_after) if self.current else "?"
        log.error(
            "TLS: %s; %s (expires %s), next attempt in %.0f s",
            exc.message,
            keeping,
            expires,
            self.settings.retry_seconds,
        )

    def _seconds_until_due(self) -> float:
        if self.current is None:
            return 0.0
        due = self.current.renew_at(self.settings.renew_before)
        if self._retry_at is not None:
            due = max(due, self._retry_at)
        return (due - _now()).total_seconds()

    async def _keep_fresh(self) -> None:
        while True:
            delay = self._seconds_until_due()
            if delay > 0:
                with trio.move_on_after(min(delay, MAX_SLEEP)):
                    await self._wake.wait()
                continue
            try:
                await self.renew_now()
            except AcmeError as exc:
                self._failed(exc, "keeping the current certificate")


def _day(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
