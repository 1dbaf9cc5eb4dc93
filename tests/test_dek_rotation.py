"""Message-body DEK rotation (issue #17): a new epoch on the first post after
``kms.dek_rotation_days``, old epochs readable, every epoch shredded."""

from __future__ import annotations

import time

import httpx
import trio

from actors.ids import new_id
from actors.kms.actor import KeyShredded, Kms, register_kms
from actors.kms.records import BucketStore
from actors.runtime import RuntimeSettings, open_actor_system
from actors.users.actor import CreateUser, EnsureBodyKey, GetKeyRefs, KeyRotation, UserActor
from actors.users.events import BODY_PURPOSE
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE
from chatto.crypto import aad
from chatto.crypto.master import new_master_key
from chatto.eventstore import JetStreamEventStore
from tests.authflow import login_token, register
from tests.conftest import AuthEnv, ConfigFactory, start_mail_server
from tests.test_deletion import PW, user_keys
from tests.test_messaging import POST, ok

DAY = 86_400.0


async def test_body_key_gets_a_new_epoch_after_the_period(bridge: NatsBridge) -> None:
    now = [time.time()]
    rotation = KeyRotation(30.0, clock=lambda: now[0])
    store = JetStreamEventStore(bridge)
    with trio.fail_after(30):
        async with open_actor_system(RuntimeSettings(ask_timeout=10)) as system:
            keks, deks = BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)
            register_kms(system, keks, deks, new_master_key())
            kms = Kms(system)
            system.register("user", lambda uid: UserActor(uid, store, kms, frozenset(), rotation))
            uid = new_id()
            await system.ask("user", uid, CreateUser("ann", "Ann", "ann@example.com", "$2b$x"))

            async def epoch() -> int:
                return int((await system.ask("user", uid, EnsureBodyKey())).value.epoch)

            assert await epoch() == 1
            now[0] += 29 * DAY
            assert await epoch() == 1  # not due yet
            now[0] += 2 * DAY
            assert await epoch() == 2  # due: the next post gets a new epoch
            assert await epoch() == 2  # and only one
            now[0] += 31 * DAY
            assert await epoch() == 3
            # Every epoch is a separate DEK; all are kept until shredded.
            keys, refs = (await system.ask("user", uid, GetKeyRefs())).value
            assert len(refs) == 4  # PII + three body epochs
            assert len(set(refs)) == 4 and len(keys) == 1  # one KEK wraps them all


async def test_old_epochs_read_and_all_are_shredded(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env: AuthEnv = await start_mail_server(
        nursery,
        make_config,
        CHATTO_KMS_DEK_ROTATION_DAYS="0.00002",  # ~1.7 s
    )
    services = env.server.running.services
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            ann = await register(c, env.sink, "ann@example.com", "ann", PW)
            token = await login_token(c, "ann", PW)
            await ok(c, token, POST, r="general", b="under the first key")
            await trio.sleep(2.0)
            await ok(c, token, POST, r="general", b="under the second key")
            q = 'query { room(id: "general") { events { events { body } } } }'
            bodies = [e["body"] for e in (await ok(c, token, q))["room"]["events"]["events"]]
            assert {"under the first key", "under the second key"} <= set(bodies)
            uid = ann.user["id"]
            body_epochs = sorted(
                k.epoch for k in await user_keys(services, uid) if k.purpose == BODY_PURPOSE
            )
            assert body_epochs[:2] == [1, 2]
            challenge = (await ok(c, token, "mutation { requestAccountDeletion { token } }"))[
                "requestAccountDeletion"
            ]["token"]
            await ok(c, token, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=challenge)
            while services.deleter.completed < 1:
                await trio.sleep(0.05)
        kms = services.messaging.keys._kms
        for k in await user_keys(services, uid):
            context = aad.dek_wrap_aad(uid, k.purpose, k.epoch)
            try:
                await kms.unwrap_dek(k.dek_ref, k.kek_ref, context)
                raise AssertionError(f"epoch {k.epoch} of {k.purpose} still opens")
            except KeyShredded:
                pass
    await env.server.stop()
