"""A deletion in one process makes every process forget the user's keys at once."""

from __future__ import annotations

import trio

from actors.ids import new_id
from actors.kms.actor import KeyShredded
from actors.users.actor import CreateUser
from actors.users.events import BODY_PURPOSE
from chatto.crypto import aad
from tests.conftest import ConfigFactory, NatsProc, start_server


async def test_other_process_drops_cached_keys(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    config = make_config(
        CHATTO_NATS_EMBEDDED_ENABLED="false",
        CHATTO_NATS_URL=nats_server.url,
        CHATTO_NATS_TOKEN=nats_server.token,
        CHATTO_AUTH_BCRYPT_COST="4",
    )
    with trio.fail_after(60):
        one = await start_server(nursery, config)
        two = await start_server(nursery, config)
        a, b = one.running.services, two.running.services
        uid = new_id()
        pw = await a.accounts.hasher.hash("a long enough password")
        done = await a.actors.ask("user", uid, CreateUser("gone", "gone", "gone@example.com", pw))
        await a.projector.wait_for(done.last_seq)
        await a.messaging.join_seeded(uid)
        posted = await a.messaging.post(uid, "general", "cached elsewhere")
        await b.projector.wait_for(posted.seq)
        # Process two reads the body: its caches now hold the author's key.
        msg = b.messaging.rooms.messages[posted.id]
        assert await b.messaging.keys.open_body(msg) == "cached elsewhere"
        dek_ref, kek_ref = b.directory.deks[(uid, BODY_PURPOSE, 1)]
        await a.deleter.request(uid, uid)
        while b.directory.users[uid].deleted is False:
            await trio.sleep(0.02)
        assert await b.messaging.keys.key_for(uid, 1) is None
        try:
            context = aad.dek_wrap_aad(uid, BODY_PURPOSE, 1)
            await b.messaging.keys._kms.unwrap_dek(dek_ref, kek_ref, context)
            raise AssertionError("process two still unwrapped a shredded key")
        except KeyShredded:
            pass
        await one.stop()
        await two.stop()
