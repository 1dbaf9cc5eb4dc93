"""The room index object container (``actors/rooms/indexblob.py``), no I/O."""

from __future__ import annotations

import random
import zlib

import pytest

from actors.rooms.indexblob import BLOB, CHUNK, MAGIC, pack, unpack


def _row(rng: random.Random) -> dict[str, object]:
    long = "QUJD" * (BLOB // 4 + 3)  # base64-like, beside the header
    threads = {
        f"root{i:05d}": ("x" * (BLOB + 1) if i == 7 else f"t{i}") for i in range(2 * CHUNK + 5)
    }
    return {
        "timeline": long,
        "threads": threads,  # chunked, one value itself a blob
        "posts": {"seqs": long + "A", "index": [[64, 3, long], [128, 5, "short"]], "root_ids": {}},
        "attachments": {"a1": [0, "bmFtZQ==", "text/plain", rng.randint(1, 99), 1, False]},
        "empty": {},
    }


def test_pack_and_unpack_give_back_the_row_and_are_deterministic() -> None:
    row = _row(random.Random(3))
    data = pack(row)
    assert data.startswith(MAGIC)
    assert unpack(data) == row
    assert pack(unpack(data)) == data  # the same row, the same bytes (digests)
    body = zlib.decompress(data[len(MAGIC) :])
    header_size = int(body[: body.index(b"\n")])
    assert header_size < 2000  # the header holds the structure, not the arrays


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: b"not an index",
        lambda d: d[: len(MAGIC) + 10],
        lambda d: MAGIC + zlib.compress(zlib.decompress(d[len(MAGIC) :]) + b"extra", 1),
        lambda d: MAGIC + zlib.compress(b"12\n{}", 1),
    ],
)
def test_a_damaged_object_is_a_value_error(damage: object) -> None:
    data = pack(_row(random.Random(4)))
    with pytest.raises(ValueError):
        unpack(damage(data))  # type: ignore[operator]
