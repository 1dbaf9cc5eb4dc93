"""AEAD sealing and canonical AAD: tampering, wrong contexts and legacy bodies fail closed.

Pure CPU tests with no checkpoints, so they are plain functions: a
``fail_after`` guard could never fire here.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatto.crypto import aad, aead

KEY = bytes(range(32))
CONTEXT = ("evt-1", "body-1", "room-1", "user-1", 1)
SECRET = b"the launch code is 0000"


def sealed_body() -> bytes:
    return aead.seal(KEY, SECRET, aad.body_aad(*CONTEXT))


def test_round_trip() -> None:
    context = aad.body_aad(*CONTEXT)
    blob = aead.seal(KEY, SECRET, context)
    assert blob[0] == aead.VERSION
    assert len(blob) == 1 + aead.NONCE_BYTES + len(SECRET) + aead.TAG_BYTES
    assert SECRET not in blob
    assert aead.open_sealed(KEY, blob, context) == SECRET
    assert aead.open_sealed(KEY, aead.seal(KEY, b"", context), context) == b""


def test_nonces_are_fresh() -> None:
    assert sealed_body() != sealed_body()


def test_wrong_key_fails() -> None:
    with pytest.raises(aead.DecryptionFailed):
        aead.open_sealed(aead.new_key(), sealed_body(), aad.body_aad(*CONTEXT))


@pytest.mark.parametrize(
    "index",
    [
        0,  # version byte
        1,  # nonce, first byte
        aead.NONCE_BYTES,  # nonce, last byte
        1 + aead.NONCE_BYTES,  # ciphertext
        -aead.TAG_BYTES - 1,  # ciphertext, last byte
        -aead.TAG_BYTES,  # tag
        -1,  # tag, last byte
    ],
)
def test_flipped_bit_fails(index: int) -> None:
    blob = bytearray(sealed_body())
    blob[index] ^= 0x01
    with pytest.raises(aead.DecryptionFailed) as caught:
        aead.open_sealed(KEY, bytes(blob), aad.body_aad(*CONTEXT))
    assert caught.value.code == "DECRYPTION_FAILED"
    assert caught.value.http_status == 500


@pytest.mark.parametrize("length", [0, 1, 1 + aead.NONCE_BYTES, 1 + aead.NONCE_BYTES + 15, -1])
def test_truncated_or_empty_fails(length: int) -> None:
    with pytest.raises(aead.DecryptionFailed):
        aead.open_sealed(KEY, sealed_body()[:length], aad.body_aad(*CONTEXT))


def test_error_carries_no_secrets() -> None:
    with pytest.raises(aead.DecryptionFailed) as caught:
        aead.open_sealed(KEY, sealed_body(), aad.body_aad("evt-2", *CONTEXT[1:]))
    text = f"{caught.value} {caught.value.message!r} {caught.value!r}"
    for secret in (KEY, SECRET, KEY.hex().encode()):
        assert secret.decode("latin-1") not in text


def test_wrong_key_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        aead.seal(b"short", SECRET, b"")
    with pytest.raises(ValueError):
        aead.open_sealed(KEY[:16], sealed_body(), b"")


@pytest.mark.parametrize(
    "other",
    [
        ("evt-2", "body-1", "room-1", "user-1", 1),  # another event
        ("evt-1", "body-2", "room-1", "user-1", 1),  # another body event
        ("evt-1", "body-1", "room-2", "user-1", 1),  # another room
        ("evt-1", "body-1", "room-1", "user-2", 1),  # another author
        ("evt-1", "body-1", "room-1", "user-1", 2),  # another epoch
    ],
)
def test_body_copied_into_another_context_fails(other: tuple[str, str, str, str, int]) -> None:
    with pytest.raises(aead.DecryptionFailed):
        aead.open_sealed(KEY, sealed_body(), aad.body_aad(*other))


def test_domains_do_not_collide() -> None:
    encodings = {
        aad.body_aad("e", "b", "r", "u", 1),
        aad.pii_aad("e", "u", "t", "f", 1),
        aad.dek_wrap_aad("u", "p", 1),
        aad.dek_wrap_aad("u", "p", 2),
        aad.dek_wrap_aad("u", "q", 1),
    }
    assert len(encodings) == 5
    blob = aead.seal(KEY, SECRET, aad.pii_aad("e", "u", "t", "login", 1))
    with pytest.raises(aead.DecryptionFailed):
        aead.open_sealed(KEY, blob, aad.pii_aad("e", "u", "t", "email", 1))


def test_encoding_is_length_safe_and_typed() -> None:
    assert aad.encode("d", 1, [("x", "ab"), ("y", "c")]) != aad.encode(
        "d", 1, [("x", "a"), ("y", "bc")]
    )
    assert aad.encode("d", 1, [("ab", "c")]) != aad.encode("d", 1, [("a", "bc")])
    assert aad.encode("d", 1, [("n", 1)]) != aad.encode("d", 1, [("n", "1")])
    assert aad.encode("d", 1, []) != aad.encode("d", 2, [])
    assert aad.encode("d", 1, []) != aad.encode("e", 1, [])
    with pytest.raises(TypeError):
        aad.encode("d", 1, [("flag", True)])


field = st.tuples(st.text(max_size=6), st.one_of(st.text(max_size=6), st.integers()))
context = st.tuples(st.text(max_size=6), st.integers(0, 3), st.lists(field, max_size=4))


Context = tuple[str, int, list[tuple[str, str | int]]]


@given(context, context)
def test_encoding_is_injective(a: Context, b: Context) -> None:
    assert (aad.encode(*a) == aad.encode(*b)) == (a == b)


def test_encoding_is_deterministic() -> None:
    assert aad.body_aad(*CONTEXT) == aad.body_aad(*CONTEXT)
    assert aad.body_aad(*CONTEXT).startswith(aad.PREFIX)


def test_legacy_v1_round_trip() -> None:
    blob = aead.seal_legacy_v1(KEY, SECRET)
    assert len(blob) == aead.LEGACY_NONCE_BYTES + len(SECRET) + aead.TAG_BYTES
    assert aead.open_legacy_v1(KEY, blob) == SECRET
    with pytest.raises(aead.DecryptionFailed):
        aead.open_legacy_v1(aead.new_key(), blob)
    with pytest.raises(aead.DecryptionFailed):
        aead.open_legacy_v1(KEY, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(aead.DecryptionFailed):
        aead.open_legacy_v1(KEY, blob[:10])
    with pytest.raises(aead.DecryptionFailed):
        aead.open_legacy_v1(KEY, b"")


def test_legacy_and_current_formats_do_not_cross() -> None:
    legacy = aead.seal_legacy_v1(KEY, SECRET)
    for context in (b"", aad.body_aad(*CONTEXT)):
        with pytest.raises(aead.DecryptionFailed):
            aead.open_sealed(KEY, legacy, context)
    with pytest.raises(aead.DecryptionFailed):
        aead.open_legacy_v1(KEY, aead.seal(KEY, SECRET, b""))
