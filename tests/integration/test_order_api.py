"""The order API on the real broker and registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from golive_contracts.events import OrderPlaced
from golive_contracts.flags import ORDERS_OPEN
from golive_contracts.scopes import Scope
from golive_eventing import clients
from golive_eventing.flags import read as read_flags
from golive_eventing.flags import with_default
from golive_eventing.flags import write as write_flags
from golive_eventing.serde import EventSerde
from golive_order.bootstrap import order_app
from golive_order.settings import OrderSettings
from golive_platform.config import PlatformConfig
from golive_platform.testing import Cluster

from tests.factories import order_confirmed, order_request
from tests.helpers import Topics, eventually, issuer, publish_events, read_topic

pytestmark = pytest.mark.integration


def _client(cluster: Cluster, topics: Topics, database_url: str, **overrides: Any) -> TestClient:
    settings = OrderSettings.model_validate(
        {**topics.env(cluster), "order_database_url": database_url, **overrides}
    )
    scopes = (Scope.PLACE_ORDERS, Scope.READ_ORDERS)
    return TestClient(order_app(settings), headers=issuer().headers(*scopes))


@pytest.fixture
def api(cluster: Cluster, topics: Topics, database_url: str) -> Iterator[TestClient]:
    with _client(cluster, topics, database_url) as client:
        eventually(
            lambda: client.get("/readyz").status_code == 200, 30, "the order API to be ready"
        )
        yield client


def placed_events(cluster: Cluster, topics: Topics) -> list[OrderPlaced]:
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    events = [
        serde.deserialize(value) for _, value in read_topic(cluster.connection, topics.orders)
    ]
    return [e for e in events if isinstance(e, OrderPlaced)]


def post(client: TestClient, body: dict[str, Any], key: str | None = "key-1") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/orders", json=body, headers=headers)


def test_accepted_order_is_readable_at_once(
    api: TestClient, cluster: Cluster, topics: Topics
) -> None:
    response = post(api, order_request())
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    assert response.headers["location"] == f"/orders/{order_id}"
    # No wait here: the GET itself waits for the projection to reach the produced offset.
    order = api.get(f"/orders/{order_id}")
    assert order.status_code == 200
    assert order.json()["status"] == "PLACED"
    assert order.json()["total_minor"] == 2500
    (event,) = placed_events(cluster, topics)
    assert str(event.order_id) == order_id
    assert event.email == "ada@example.com"


def test_a_retry_gets_the_first_answer_and_emits_nothing(
    api: TestClient, cluster: Cluster, topics: Topics
) -> None:
    first = post(api, order_request())
    again = post(api, order_request())
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["location"] == first.headers["location"]
    assert len(placed_events(cluster, topics)) == 1


def test_the_same_key_with_another_body_is_refused(
    api: TestClient, cluster: Cluster, topics: Topics
) -> None:
    assert post(api, order_request()).status_code == 202
    other = post(api, order_request(customer="someone-else"))
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert len(placed_events(cluster, topics)) == 1


def test_concurrent_duplicates_emit_one_event(
    api: TestClient, cluster: Cluster, topics: Topics
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: post(api, order_request(), key="same-key"), range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert len(placed_events(cluster, topics)) == 1


def test_keys_survive_a_restart(cluster: Cluster, topics: Topics, database_url: str) -> None:
    with _client(cluster, topics, database_url) as first_life:
        before = post(first_life, order_request(), key="durable-key").json()
    with _client(cluster, topics, database_url) as second_life:
        after = post(second_life, order_request(), key="durable-key")
        assert after.json() == before
    assert len(placed_events(cluster, topics)) == 1


def test_a_long_poll_answers_when_the_read_model_changes_the_order(
    cluster: Cluster, topics: Topics, database_url: str
) -> None:
    # Reading again on an interval is only for other processes' projections: set beyond the
    # wait, only the wake-up from this process's projection can answer the long poll early.
    with _client(
        cluster, topics, database_url, order_long_poll_recheck_s=60, order_long_poll_max_s=60
    ) as api:
        order_id = post(api, order_request()).json()["order_id"]
        placed = api.get(f"/orders/{order_id}")
        etag = placed.headers["etag"]
        assert (placed.json()["status"], etag) == (
            "PLACED",
            f'"{placed_events(cluster, topics)[0].envelope.event_id}"',
        )
        unchanged = api.get(f"/orders/{order_id}", headers={"If-None-Match": etag})
        assert (unchanged.status_code, unchanged.headers["etag"], unchanged.content) == (
            304,
            etag,
            b"",
        )
        # Nothing changes it meanwhile: 304 once the wait asked for is over.
        waited = api.get(f"/orders/{order_id}", headers={"If-None-Match": etag, "Prefer": "wait=1"})
        assert (waited.status_code, waited.headers["preference-applied"]) == (304, "wait=1")

        changes = api.app.state.ordering.changes  # type: ignore[attr-defined]
        with ThreadPoolExecutor(max_workers=1) as waiting:
            poll = waiting.submit(
                api.get,
                f"/orders/{order_id}",
                headers={"If-None-Match": etag, "Prefer": "wait=50"},
            )
            eventually(lambda: changes.watched() == 1, 10, "the long poll to wait")
            confirmed = order_confirmed(uuid.UUID(order_id))
            publish_events(cluster, topics, confirmed)
            final = poll.result(timeout=20)  # it would wait 50 s for a change nobody announced
        assert final.status_code == 200
        assert final.json()["status"] == "CONFIRMED"
        assert final.headers["etag"] == f'"{confirmed.envelope.event_id}"'
        assert final.headers["preference-applied"] == "wait=50"

        # The process is asked to stop (golive_eventing.app.serve's on_exit): a waiting long
        # poll answers at once, not in 50 s, past the platform's stop timeout.
        with ThreadPoolExecutor(max_workers=1) as waiting:
            final_etag = final.headers["etag"]
            poll = waiting.submit(
                api.get,
                f"/orders/{order_id}",
                headers={"If-None-Match": final_etag, "Prefer": "wait=50"},
            )
            eventually(lambda: changes.watched() == 1, 10, "the long poll to wait")
            changes.close()
            stopping = poll.result(timeout=20)
        assert (stopping.status_code, stopping.headers["etag"]) == (304, final_etag)


def test_unknown_order_is_404(api: TestClient) -> None:
    assert api.get("/orders/00000000-0000-0000-0000-000000000000").status_code == 404


def test_list_filters_by_customer_and_status_and_paginates(api: TestClient) -> None:
    mine = {
        post(api, order_request(customer="alice"), key=f"a-{i}").json()["order_id"]
        for i in range(5)
    }
    post(api, order_request(customer="bob"), key="b-1")
    for order_id in mine:  # each GET waits for its own order's projection
        assert api.get(f"/orders/{order_id}").status_code == 200

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"customer_id": "alice", "status": "PLACED", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/orders", params=params).json()
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert set(seen) == mine
    assert (
        api.get("/orders", params={"customer_id": "alice", "status": "CONFIRMED"}).json()["items"]
        == []
    )
    assert api.get("/orders", params={"cursor": "not-a-cursor"}).status_code == 422


# -- bad input: 422 with field errors, 413 for a body too large (SQLite is enough: nothing is stored) --


@pytest.fixture
def edge(cluster: Cluster, topics: Topics, tmp_path: Any) -> Iterator[TestClient]:
    with _client(cluster, topics, f"sqlite:///{tmp_path / 'edge.db'}") as client:
        yield client


def _line(**overrides: Any) -> dict[str, Any]:
    return {"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 100, **overrides}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order_request(lines=[]), ["body", "lines"]),
        (order_request(lines=[_line(quantity=0)]), ["body", "lines", 0, "quantity"]),
        (
            order_request(lines=[_line(unit_price_minor=-1)]),
            ["body", "lines", 0, "unit_price_minor"],
        ),
        (order_request(lines=[_line(unit_price_minor=10**12)]), ["body"]),
        (order_request(currency="XYZ"), ["body", "currency"]),
        (order_request(lines=[_line()] * 101), ["body", "lines"]),
        (order_request(email="not-an-email"), ["body", "email"]),
        (order_request(card_token="4242424242424242"), ["body", "card_token"]),
        ({**order_request(), "surprise": 1}, ["body", "surprise"]),
    ],
    ids=[
        "no-items",
        "quantity-0",
        "negative-price",
        "absurd-price",
        "unknown-currency",
        "101-lines",
        "bad-email",
        "raw-card-number",
        "unknown-field",
    ],
)
def test_bad_orders_get_422_naming_the_field(
    edge: TestClient, cluster: Cluster, topics: Topics, body: dict[str, Any], field: list[Any]
) -> None:
    response = post(edge, body)
    assert response.status_code == 422
    assert field in [error["loc"] for error in response.json()["detail"]]
    assert placed_events(cluster, topics) == []


def test_absurd_price_error_says_why(edge: TestClient) -> None:
    response = post(edge, order_request(lines=[_line(unit_price_minor=10**12)]))
    assert "above 1000000 EUR" in json.dumps(response.json())


def test_malformed_json_is_422(edge: TestClient) -> None:
    response = edge.post(
        "/orders", content=b'{"customer_id": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_a_body_that_is_not_even_utf8_is_422(edge: TestClient) -> None:
    response = edge.post(
        "/orders", content=b"H1\xff+\x16\xe2V8", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_oversized_body_is_413(edge: TestClient) -> None:
    huge = order_request(customer="x" * (70 * 1024))
    assert post(edge, huge).status_code == 413


def test_with_orders_open_off_a_new_order_is_503_and_an_accepted_one_keeps_its_answer(
    cluster: Cluster, topics: Topics, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.json"
    source = read_flags(PlatformConfig().flags_source)
    write_flags(flags, source)
    settings = OrderSettings.model_validate(
        {
            **topics.env(cluster),
            "order_database_url": f"sqlite:///{tmp_path}/o.db",
            "flags_file": flags,
        }
    )
    scopes = (Scope.PLACE_ORDERS, Scope.READ_ORDERS)
    with TestClient(order_app(settings), headers=issuer().headers(*scopes)) as api:
        eventually(lambda: api.get("/readyz").status_code == 200, 30, "the order API to be ready")
        accepted = post(api, order_request(), key="before")
        assert accepted.status_code == 202

        ordering = api.app.state.ordering  # type: ignore[attr-defined]

        def open_is(value: bool) -> bool:
            return ordering.flags.enabled(ORDERS_OPEN) is value

        write_flags(flags, with_default(source, ORDERS_OPEN.key, "off"))
        eventually(lambda: open_is(False), 10, "the orders-open flag to be read off")
        later = order_request(customer="later")
        refused = post(api, later, key="during")
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        assert "orders-open" in refused.json()["detail"]
        again = post(api, order_request(), key="before")  # a retry of an accepted order
        assert (again.status_code, again.json()) == (202, accepted.json())

        write_flags(flags, source)
        eventually(lambda: open_is(True), 10, "the orders-open flag to be read on again")
        assert post(api, later, key="during").status_code == 202  # the refused one, retried
    assert len(placed_events(cluster, topics)) == 2
