"""One ACME order (RFC 8555, HTTP-01) with certbot's ``acme`` library.

``obtain_certificate`` blocks (the library uses ``requests``); the manager
runs it in a worker thread. It creates a fresh certificate key each time,
registers (or finds) the account of the cached account key, answers the
HTTP-01 challenges through ``ChallengeTokens`` and returns the new key and
full chain. Every library or network failure becomes one ``AcmeError`` line
that names the directory and the cause, never a key.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import cast

import attrs
import requests
from acme import challenges, client, crypto_util, messages
from acme import errors as acme_errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.errors import Error as JoseError
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from chatto import __version__
from chatto.errors import AcmeError
from chatto.tls.challenge import ChallengeTokens


@attrs.frozen
class AcmeSettings:
    directory: str
    domain: str
    email: str = ""
    ca_bundle: Path | None = None
    request_timeout: int = 30
    order_seconds: float = 90.0


def obtain_certificate(
    settings: AcmeSettings,
    account_key_pem: bytes,
    tokens: ChallengeTokens,
    checkpoint: Callable[[], None] = lambda: None,
) -> tuple[bytes, bytes]:
    """Run one order; ``(key_pem, fullchain_pem)`` or ``AcmeError``.

    ``checkpoint`` is called between network steps (the manager passes
    ``trio.from_thread.check_cancelled`` so a shutdown ends the thread early).
    """
    try:
        return _order(settings, account_key_pem, tokens, checkpoint)
    except (acme_errors.Error, messages.Error, requests.RequestException, JoseError) as exc:
        raise AcmeError(
            f"ACME order for {settings.domain} at {settings.directory} failed: {describe(exc)}"
        ) from exc


def _order(
    settings: AcmeSettings,
    account_key_pem: bytes,
    tokens: ChallengeTokens,
    checkpoint: Callable[[], None],
) -> tuple[bytes, bytes]:
    acme = _client(settings, account_key_pem)
    checkpoint()
    key_pem = _new_key_pem()
    order = acme.new_order(crypto_util.make_csr(key_pem, [settings.domain]))
    published: list[str] = []
    try:
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # reused from an earlier order
            challenge = _http01(authz)
            response, answer = challenge.response_and_validation(acme.net.key)
            token = challenge.chall.encode("token")
            tokens.put(token, answer)
            published.append(token)
            checkpoint()
            acme.answer_challenge(challenge, response)
        checkpoint()
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=settings.order_seconds)
        finished = acme.poll_and_finalize(order, deadline)
    finally:
        for token in published:
            tokens.remove(token)
    return key_pem, finished.fullchain_pem.encode()


def _client(settings: AcmeSettings, account_key_pem: bytes) -> client.ClientV2:
    key = serialization.load_pem_private_key(account_key_pem, password=None)
    # requests takes a CA file path where the library's annotation says bool.
    verify = cast(bool, str(settings.ca_bundle)) if settings.ca_bundle else True
    net = client.ClientNetwork(
        JWKEC(key=key),
        alg=ES256,
        verify_ssl=verify,
        user_agent=f"chatto/{__version__} acme-python",
        timeout=settings.request_timeout,
    )
    acme = client.ClientV2(client.ClientV2.get_directory(settings.directory, net), net)
    registration = messages.NewRegistration.from_data(
        email=settings.email or None, terms_of_service_agreed=True
    )
    try:
        acme.new_account(registration)
    except acme_errors.ConflictError as exc:
        # The key is already registered: use that account.
        net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    return acme


def _http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authz.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    raise AcmeError(f"the CA offers no http-01 challenge for {authz.body.identifier.value}")


def _new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def describe(exc: BaseException) -> str:
    """One line about what went wrong, for operators."""
    if isinstance(exc, acme_errors.ValidationError):
        problems = [
            f"{c.error.typ.rsplit(':', 1)[-1]}: {c.error.detail}"
            for authz in exc.failed_authzrs
            for c in authz.body.challenges
            if c.error is not None
        ]
        text = "challenge validation failed (" + "; ".join(problems or ["no detail"]) + ")"
    elif isinstance(exc, messages.Error):
        text = f"the CA answered {exc.typ.rsplit(':', 1)[-1]}: {exc.detail or exc.title}"
    elif isinstance(exc, requests.exceptions.SSLError):
        text = (
            "the ACME server's certificate is not trusted "
            "(set webserver.tls.acme_ca_bundle for a private CA)"
        )
    elif isinstance(exc, requests.ConnectionError):
        text = "cannot connect to the ACME server"
    elif isinstance(exc, requests.Timeout):
        text = "the ACME server did not answer in time"
    elif isinstance(exc, acme_errors.TimeoutError):
        text = "the order was not finished in time"
    elif isinstance(exc, acme_errors.ClientError | requests.RequestException):
        text = f"unexpected answer from the ACME server ({type(exc).__name__}: {exc})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
