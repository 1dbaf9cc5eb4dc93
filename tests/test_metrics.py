"""``/metrics``: who may scrape it, and what it says while traffic runs.

Scrapes are parsed with prometheus_client's own text parser, so the
exposition is what Prometheus itself reads. The load test runs posts over
HTTP, a subscriber in each WebSocket subprotocol and a login flood that
hits a rate limit, scraping all along; the text must never hold a user id,
login, email or room name.
"""

from __future__ import annotations

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from chatto.http.metrics_route import route_template
from tests.authflow import bearer, login_token, register
from tests.conftest import ConfigFactory, ServerHandle, start_mail_server, start_server
from tests.liveclient import live_client
from tests.test_messaging import ok

PW = "a long enough password"
TOKEN = "metrics-scrape-token-0123456789abcdef"
POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` that has these labels (and maybe others)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def maybe(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_are_off_by_default(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=chatto.url) as c:
            r = await c.get("/metrics")
            assert r.status_code == 404
            assert "chatto_" not in r.text


async def test_scrape_needs_an_allowed_address_or_the_token(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    by_token = await start_server(
        nursery,
        make_config(
            CHATTO_METRICS_ENABLED="true", CHATTO_METRICS_ALLOW="", CHATTO_METRICS_TOKEN=TOKEN
        ),
    )
    by_address = await start_server(
        nursery,
        make_config(
            CHATTO_METRICS_ENABLED="true",
            CHATTO_WEBSERVER_TRUSTED_PROXIES="127.0.0.1",
            CHATTO_CORE_DATA_DIR="data-2",  # a server of its own (its own master key)
        ),
    )
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=by_token.url) as c:
            for headers in ({}, bearer("wrong-token"), bearer(TOKEN + "x")):
                r = await c.get("/metrics", headers=headers)
                assert r.status_code == 401 and "chatto_" not in r.text
                assert r.headers["www-authenticate"].startswith("Bearer")
            r = await c.get("/metrics", headers=bearer(TOKEN))
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain; version=")
            assert "chatto_projector_position" in r.text
            assert (await c.post("/metrics", headers=bearer(TOKEN))).status_code == 405
        async with httpx.AsyncClient(base_url=by_address.url) as c:
            assert (await c.get("/metrics")).status_code == 200  # loopback is allowed
            # Through a trusted proxy the client's own address decides.
            r = await c.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
            assert r.status_code == 403 and "chatto_" not in r.text
    await by_token.stop()
    await by_address.stop()


async def test_scrapes_under_load_count_the_traffic_without_personal_data(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_METRICS_ENABLED="true",
        CHATTO_LIMITS_LOGIN_PER_IP="3/300",
    )
    texts: list[str] = []
    during: list[Samples] = []
    posters, each = 4, 10
    posts = posters * each
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            account = await register(c, env.sink, "metric.person@example.com", "metricperson", PW)
            token = await login_token(c, "metricperson", PW)

            async def scrape() -> Samples:
                r = await c.get("/metrics")
                assert r.status_code == 200, r.text
                texts.append(r.text)
                return parse(r.text)

            async def post_some(p: int) -> None:
                for i in range(each):
                    await ok(c, token, POST, r="general", b=f"message {p}.{i}")

            async def scrape_along() -> None:
                while True:
                    during.append(await scrape())
                    await trio.sleep(0.05)

            async with (
                live_client(env.url, token) as modern,
                live_client(env.url, token, protocol="graphql-ws") as legacy,
                trio.open_nursery() as traffic,
            ):
                traffic.start_soon(scrape_along)
                async with trio.open_nursery() as posting:
                    for p in range(posters):
                        posting.start_soon(post_some, p)
                for _ in range(6):  # a flood: the fourth attempt is refused
                    await c.post("/auth/login", json={"login": "metricperson", "password": "x"})
                await c.get("/assets/attachments/general/some-attachment-id")
                await c.get(f"/no/such/{account.user['id']}")
                for live in (modern, legacy):
                    while len(live.of_type("MESSAGE_POSTED")) < posts:
                        live.changed = trio.Event()
                        await live.changed.wait()
                during.append(await scrape())
                traffic.cancel_scope.cancel()
            final = await scrape()
            while total(final, "chatto_websockets_open"):
                await trio.sleep(0.05)  # the server notices the closes
                final = await scrape()

    last = during[-1]
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        assert value(last, "chatto_websockets_open", protocol=protocol) == 1
        assert value(last, "chatto_subscriptions_active", protocol=protocol) == 1
        assert value(final, "chatto_websockets_open", protocol=protocol) == 0
    http = "chatto_http_requests_total"
    assert value(final, http, route="/api/graphql", method="POST", status="200") >= posts
    assert value(final, "chatto_http_request_duration_seconds_count", route="/api/graphql") >= posts
    assert value(final, http, route="/auth/login", method="POST", status="429") >= 1
    # Paths that name a room or a user are counted under their template.
    assert total(final, http, route="/assets/attachments/{id}") == 1
    assert total(final, http, route="other") == 1
    ops = "chatto_graphql_operations_total"
    assert (
        value(final, ops, transport="http", type="mutation", field="postMessage", outcome="ok")
        == posts
    )
    assert (
        value(final, ops, transport="ws", type="subscription", field="myEvents", outcome="ok") == 2
    )
    assert value(final, "chatto_live_deliveries_total") >= 2 * posts
    assert value(final, "chatto_rate_limit_refusals_total", limit="login_per_ip") >= 1
    assert value(final, "chatto_nats_publishes_total", outcome="ok") >= posts
    assert value(final, "chatto_nats_publish_seconds_count") >= posts
    head = value(final, "chatto_stream_head")
    assert value(final, "chatto_projector_position") <= head
    assert value(final, "chatto_projector_lag_events") >= 0
    assert value(final, "chatto_actors_live") >= 1
    assert value(final, "chatto_bcrypt_queue_depth") == 0
    for name in (
        "chatto_slow_subscriber_closes_total",
        "chatto_hub_dropped_subscribers_total",
        "chatto_snapshot_write_seconds_count",
        "chatto_checkpoint_write_seconds_count",
        "process_resident_memory_bytes",
        "chatto_cold_pages",
        "chatto_cold_pages_misses_total",
        "chatto_hot_messages",
        "chatto_hot_messages_max",
        "chatto_hot_rooms",
        "chatto_hot_evicted_total",
    ):
        assert (name, frozenset()) in final, name
    # Counters only grow between scrapes taken while the traffic ran.
    posted = {"transport": "http", "type": "mutation", "field": "postMessage", "outcome": "ok"}
    counts = [maybe(s, ops, **posted) or 0 for s in during]
    assert counts == sorted(counts) and len(during) >= 3
    personal = [account.user["id"], "metricperson", "metric.person", "general", token]
    for text in texts:
        for item in personal:
            assert item not in text, item


def test_routes_are_templates_from_a_fixed_set() -> None:
    assert route_template("/metrics") == "/metrics"
    assert route_template("/assets/avatars/u123") == "/assets/avatars/{id}"
    assert route_template("/auth/login") == "/auth/login"
    assert route_template("/auth/whatever-a-client-sends") == "other"
