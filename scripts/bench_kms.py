"""Benchmark: the master key's costs (issue #17), on an embedded nats-server.

- cold KEK load (KV read + master-key unwrap) and the unwrap alone, with
  the ``local`` provider or (``--provider pkcs11``) a key inside Debian's
  SoftHSM, set up in a throw-away token directory as the tests do;
- the KMS work of a post with a warm cache (a DEK unwrap answered from the
  cache), for a user whose KEK is sealed (this change) and one whose KEK is
  raw (before it), in one run: it must not move;
- sealing 10,000 raw KEKs of an older server at start (the migration);
- bytes left after shredding: every KEK's raw and base64 forms searched in
  every file under the NATS store once it stopped (must be zero).

Prints a summary and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.softhsm

from actors.kms.actor import CreateKek, GenerateDek, KmsActor, ShredKeys, UnwrapDek
from actors.kms.records import RAW_KEK, BucketStore, open_key_record
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE, bootstrap_storage
from chatto.crypto import aad, aead
from chatto.crypto.master import new_master_key
from chatto.kms_setup import seal_raw_records
from tests.softhsm import MODULE, make_softhsm, softhsm_available

TOKEN = "bench-token-0123456789abcdef"
CONTEXT = aad.dek_wrap_aad("user-1", "message-body", 1)


def _us(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
        "n": len(ordered),
    }


async def cold_loads(bridge: NatsBridge, master: Any, n: int) -> dict[str, Any]:
    keks, deks = BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)
    maker = KmsActor(keks, deks, master)
    pairs = []
    for _ in range(n):
        ref = await maker.handle(CreateKek())
        pairs.append((ref, await maker.handle(GenerateDek(ref, CONTEXT))))
    cold: list[float] = []
    for ref, handle in pairs:
        fresh = KmsActor(keks, deks, master)  # empty caches: KV read + master unwrap
        started = time.perf_counter()
        await fresh.handle(UnwrapDek(handle.dek_ref, ref, CONTEXT))
        cold.append(time.perf_counter() - started)
    record = await bridge.kv_get(ENCRYPTION_KEYS, f"mkek.{pairs[0][0]}")
    assert record is not None
    unwrap: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        await open_key_record(master, f"mkek.{pairs[0][0]}", record.value)
        unwrap.append(time.perf_counter() - started)
    wrap: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        await master.wrap(aead.new_key(), b"bench record")
        wrap.append(time.perf_counter() - started)
    return {
        "cold_dek_unwrap_with_kek_load": _us(cold),
        "master_unwrap_alone": _us(unwrap),
        "master_wrap_alone": _us(wrap),
    }


async def warm_post_kms(bridge: NatsBridge, master: Any, n: int) -> dict[str, Any]:
    """What a post asks of the KMS with a warm cache, sealed KEK vs raw KEK."""
    keks, deks = BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)
    actor = KmsActor(keks, deks, master)
    sealed_ref = await actor.handle(CreateKek())
    await bridge.kv_put(ENCRYPTION_KEYS, RAW_KEK + "rawref", aead.new_key())
    out = {}
    for label, ref in (("sealed_kek_after", sealed_ref), ("raw_kek_before", "rawref")):
        handle = await actor.handle(GenerateDek(ref, CONTEXT))
        await actor.handle(UnwrapDek(handle.dek_ref, ref, CONTEXT))  # warm
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await actor.handle(UnwrapDek(handle.dek_ref, ref, CONTEXT))
            samples.append(time.perf_counter() - started)
        out[label] = _us(samples)
    return out


async def migration(bridge: NatsBridge, master: Any, n: int) -> dict[str, Any]:
    for i in range(n):
        await bridge.kv_put(ENCRYPTION_KEYS, f"{RAW_KEK}mig{i}", aead.new_key())
    started = time.perf_counter()
    sealed = await seal_raw_records(bridge, master)
    seconds = time.perf_counter() - started
    return {"raw_keks": n, "sealed": sealed, "seconds": round(seconds, 2)}


async def shred_leftovers(
    store_dir: Path, bridge: NatsBridge, master: Any, n: int
) -> tuple[list[bytes], int]:
    """Create and shred ``n`` KEKs; (their secrets, how many the scan found before)."""
    keks, deks = BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)
    actor = KmsActor(keks, deks, master)
    secrets: list[bytes] = []
    refs = []
    for _ in range(n):
        ref = await actor.handle(CreateKek())
        handle = await actor.handle(GenerateDek(ref, CONTEXT))
        record = await bridge.kv_get(ENCRYPTION_KEYS, f"mkek.{ref}")
        dek_record = await bridge.kv_get(RUNTIME_STATE, f"dek.{handle.dek_ref}")
        assert record is not None and dek_record is not None
        kek = await open_key_record(master, f"mkek.{ref}", record.value)
        secrets += [kek, base64.b64encode(kek), bytes(record.value), bytes(dek_record.value)]
        refs.append((ref, handle.dek_ref))
    before = scan(store_dir, secrets)  # the control: the scan does find stored records
    for ref, dek_ref in refs:
        await actor.handle(ShredKeys((ref,), (dek_ref,)))
    return secrets, before


def scan(store_dir: Path, secrets: list[bytes]) -> int:
    blob = b"\n".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())
    return sum(1 for s in secrets if s in blob)


@asynccontextmanager
async def open_master(provider: str, tmp: Path) -> AsyncIterator[Any]:
    """The master key under test: a local key, or a new key in a SoftHSM token."""
    if provider == "local":
        yield new_master_key()
        return
    from chatto.crypto.pkcs11 import TokenSettings, open_pkcs11_token

    hsm = make_softhsm(tmp / "softhsm", ["bench"], "bench-pin")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)  # before the module is first loaded
    async with open_pkcs11_token(TokenSettings(MODULE, "bench", hsm.pin), writable=True) as token:
        yield await token.generate_key("bench-master")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatto-bench-kms-") as tmp:
        store_dir = Path(tmp) / "nats"
        settings = EmbeddedSettings("127.0.0.1", 0, store_dir, TOKEN)
        async with (
            open_master(args.provider, Path(tmp)) as master,
            open_embedded_nats(settings) as nats,
            open_nats_bridge(NatsSettings(nats.url, token=TOKEN)) as bridge,
        ):
            await bootstrap_storage(bridge)
            cold = await cold_loads(bridge, master, args.n)
            mig = await migration(bridge, master, args.migrate)
            warm = await warm_post_kms(bridge, master, args.n * 10)
            secrets, before = await shred_leftovers(store_dir, bridge, master, args.shred)
            operations = master.statistics()
        leftovers = scan(store_dir, secrets)  # after a graceful stop of nats-server
    return {
        "benchmark": "kms",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "provider": args.provider,
        "master_key_operations": operations,
        **cold,
        "warm_post_kms": warm,
        "migration": mig,
        "shred": {
            "keks": args.shred,
            "secrets_searched": len(secrets),
            "found_before_shredding": before,
            "found": leftovers,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="cold loads to time")
    parser.add_argument("--migrate", type=int, default=10_000, help="raw KEKs to seal")
    parser.add_argument("--shred", type=int, default=200, help="KEKs to shred and search for")
    parser.add_argument("--out", default="kms.json", help="JSON report path")
    parser.add_argument(
        "--provider",
        choices=["local", "pkcs11"],
        default="local",
        help="master key: a local key, or a key inside a throw-away SoftHSM token",
    )
    args = parser.parse_args()
    if args.provider == "pkcs11" and not softhsm_available():
        parser.error(f"--provider pkcs11 needs softhsm2 ({MODULE}): apt-get install softhsm2")
    report = trio.run(bench, args)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    cold, alone = report["cold_dek_unwrap_with_kek_load"], report["master_unwrap_alone"]
    warm = report["warm_post_kms"]
    print(
        f"provider {report['provider']}\n"
        f"cold DEK unwrap incl. KEK load: median {cold['median_us']} us "
        f"(master unwrap alone {alone['median_us']} us, "
        f"wrap {report['master_wrap_alone']['median_us']} us)\n"
        f"warm post KMS work: sealed {warm['sealed_kek_after']['median_us']} us, "
        f"raw {warm['raw_kek_before']['median_us']} us\n"
        f"sealing {report['migration']['raw_keks']:,} raw KEKs: "
        f"{report['migration']['seconds']} s\n"
        f"after shredding {report['shred']['keks']} KEKs: "
        f"{report['shred']['found']} of {report['shred']['secrets_searched']} found on disk",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
