"""Capture and replay against the real broker and registry: window edges, journeys, no personal data."""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from golive_cli.recorder import capture as capture_module
from golive_cli.recorder.archive import CaptureFile, CaptureFileError, read_capture
from golive_cli.recorder.capture import CaptureOptions, Window, capture_to_file
from golive_cli.recorder.desensitise import DEV_KEY, Tokeniser
from golive_cli.recorder.replay import ReplayError, mark_test_environment, replay
from golive_contracts.envelope import Envelope, event_id_for
from golive_contracts.events import Address, Event, OrderConfirmed, OrderPlaced
from golive_contracts.topology import ORDERS, PAYMENTS, Names
from golive_eventing import clients
from golive_eventing.serde import EventSerde
from golive_payment.domain.rules import card_last4
from golive_platform.testing import Cluster

from tests.factories import order_placed
from tests.helpers import Topics, read_topic

pytestmark = pytest.mark.integration

# In the past: brokers refuse timestamps more than an hour ahead (log.message.timestamp.after.max.ms).
WINDOW_START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
WINDOW = Window(WINDOW_START, WINDOW_START + timedelta(minutes=1))


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def placed(key: str, secret: str, card_last: str = "4242") -> OrderPlaced:
    """An order carrying personal values unique to this test, so finding one proves a leak."""
    return order_placed(key=key).model_copy(
        update={
            "customer_id": f"cust-{secret}",
            "email": f"ada.{secret}@secret-mail.org",
            "card_token": f"tok_{secret}_{card_last}",
            "shipping_address": Address(
                name=f"Ada {secret}",
                line1=f"Lane {secret}",
                city=f"City{secret}",
                postal_code=f"P{secret[:6]}",
                country="NL",
            ),
        }
    )


def confirmed(order: OrderPlaced) -> OrderConfirmed:
    cause = str(order.envelope.event_id)
    envelope = Envelope(
        event_id=event_id_for(cause, "OrderConfirmed"),
        event_type="OrderConfirmed",
        occurred_at=order.placed_at,
        correlation_id=str(order.order_id),
        causation_id=cause,
        producer="test",
        producer_version="test",
    )
    return OrderConfirmed(envelope=envelope, order_id=order.order_id)


def publish(cluster: Cluster, topics: Topics, timed: list[tuple[Event | bytes, int, str]]) -> None:
    """One Kafka transaction, as the services write (commit markers take offsets)."""
    serde = EventSerde(clients.registry(cluster.connection), topics.as_map())
    producer = clients.producer(
        cluster.connection,
        **{
            "transactional.id": f"test-{uuid.uuid4().hex[:8]}",
        },
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for item, timestamp, key in timed:
        value = item if isinstance(item, bytes) else serde.serialize(item)
        topic = topics.orders if isinstance(item, bytes) else serde.topic_of(type(item))
        producer.produce(topic, value, key=key.encode(), timestamp=timestamp)
    producer.commit_transaction(30)


@pytest.fixture
def seeded(cluster: Cluster, topics: Topics, unique: str) -> dict[str, OrderPlaced]:
    inside = placed(f"in-{unique}", f"s{unique}a", "0002")
    late = placed(f"late-{unique}", f"s{unique}b")
    before = placed(f"before-{unique}", f"s{unique}c")
    after = placed(f"after-{unique}", f"s{unique}d")
    t = WINDOW_START
    publish(
        cluster,
        topics,
        [
            (before, ms(t - timedelta(minutes=5)), str(before.order_id)),
            (
                confirmed(before),
                ms(t + timedelta(seconds=5)),
                str(before.order_id),
            ),  # in the window
            # Same partition, timestamps out of order: the in-window record comes after a later one.
            (after, ms(t + timedelta(minutes=3)), str(after.order_id)),
            (inside, ms(t + timedelta(seconds=10)), str(inside.order_id)),
            (late, ms(t + timedelta(seconds=50)), str(late.order_id)),
            (b"not the wire format", ms(t + timedelta(seconds=20)), "poison"),
            # The journey that started inside ends after the window: captured to complete it.
            (confirmed(late), ms(t + timedelta(minutes=2)), str(late.order_id)),
            (confirmed(after), ms(t + timedelta(minutes=3, seconds=1)), str(after.order_id)),
        ],
    )
    return {"inside": inside, "late": late, "before": before, "after": after}


@pytest.mark.parametrize("spool_batch", [capture_module.SPOOL_BATCH, 2], ids=["batch", "spilled"])
def test_capture_reads_the_window_completes_journeys_and_counts_what_it_leaves_out(
    cluster: Cluster,
    topics: Topics,
    seeded: dict[str, OrderPlaced],
    tmp_path: Path,
    spool_batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a spool batch of 2, every partition's records go to disk and back before the
    journeys decide what is kept: the same capture either way."""
    monkeypatch.setattr(capture_module, "SPOOL_BATCH", spool_batch)
    out = tmp_path / "window.jsonl.gz"
    manifest = capture_to_file(
        out,
        cluster.connection,
        [topics.orders, topics.payments],
        WINDOW,
        Tokeniser(DEV_KEY),
        "dev",
        CaptureOptions(skew=timedelta(minutes=1)),
    )
    loaded = read_capture(out)
    kinds = [
        (r.key_str(), loaded.schemas[r.schema_id].full_name.rsplit(".")[-1]) for r in loaded.records
    ]
    order = {name: str(event.order_id) for name, event in seeded.items()}
    assert kinds == [
        (order["before"], "OrderConfirmed"),
        (order["inside"], "OrderPlaced"),
        (order["late"], "OrderPlaced"),
        (order["late"], "OrderConfirmed"),
    ]
    assert manifest.records == {topics.orders: 4}
    assert manifest.undecodable == {topics.orders: 1}
    assert manifest.journeys == {"started": 2, "open": 1}
    assert manifest.desensitised and manifest.key_id == "dev"
    assert loaded.manifest.sha256 == manifest.sha256
    assert all(len(s.schema) > 0 for s in loaded.schemas.values())
    for record in loaded.records:  # the original positions travel with each record
        assert record.topic == topics.orders and record.offset >= 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name], "a spool or temporary file left"


def every_byte(path: Path) -> bytes:
    """The decompressed file plus every base64 field decoded: where a leak could hide."""
    text = gzip.decompress(path.read_bytes())
    found = [text]
    for line in text.splitlines():
        item = json.loads(line).get("record")
        if item:
            found += [base64.b64decode(item["value"]), base64.b64decode(item["key"] or "")]
            found += [base64.b64decode(v) for _, v in item["headers"]]
    return b"\n".join(found)


def test_no_personal_value_appears_anywhere_in_a_desensitised_capture(
    cluster: Cluster, topics: Topics, seeded: dict[str, OrderPlaced], tmp_path: Path
) -> None:
    secrets = []
    for event in seeded.values():
        a = event.shipping_address
        secrets += [
            event.customer_id,
            event.email,
            event.card_token,
            a.name,
            a.line1,
            a.city,
            a.postal_code,
            event.card_token.split("_")[1],
        ]
    where = (cluster.connection, [topics.orders, topics.payments])
    safe, raw = tmp_path / "safe.jsonl.gz", tmp_path / "raw.jsonl.gz"
    capture_to_file(safe, *where, WINDOW, Tokeniser(DEV_KEY), "dev")
    capture_to_file(raw, *where, WINDOW, None, None)
    leaked = [s for s in secrets if s.encode() in every_byte(safe)]
    assert leaked == []
    # The search can find them: a raw capture holds every one of the window's values.
    inside = seeded["inside"]
    assert inside.email.encode() in every_byte(raw)
    assert inside.shipping_address.city.encode() in every_byte(raw)


def test_replay_rewrites_schema_ids_keeps_key_order_and_refuses_an_undeclared_target(
    cluster: Cluster, topics: Topics, seeded: dict[str, OrderPlaced], tmp_path: Path, unique: str
) -> None:
    out = tmp_path / "window.jsonl.gz"
    capture_to_file(
        out,
        cluster.connection,
        [topics.orders, topics.payments],
        WINDOW,
        Tokeniser(DEV_KEY),
        "dev",
    )
    loaded = CaptureFile(out)  # streamed from disk, as golive replay does
    target = Topics(Names({ORDERS: f"replayed.{unique}", PAYMENTS: f"replayed-p.{unique}"}))
    from tests.helpers import create_topic  # noqa: PLC0415

    create_topic(cluster.connection, target.orders, partitions=2)
    marker = f"_golive.test-environment.{unique}"
    with pytest.raises(ReplayError, match="not declared a test environment"):
        replay(
            loaded,
            cluster.connection,
            topic_map={topics.orders: target.orders},
            marker=marker,
        )
    assert mark_test_environment(cluster.connection, marker)
    with pytest.raises(ReplayError, match=f"target topics missing on .*: {topics.orders}x"):
        replay(
            loaded,
            cluster.connection,
            topic_map={topics.orders: f"{topics.orders}x"},
            marker=marker,
        )
    result = replay(
        loaded,
        cluster.connection,
        topic_map={topics.orders: target.orders},
        speed=None,
        marker=marker,
    )
    assert result.published == {target.orders: 4}

    serde = EventSerde(clients.registry(cluster.connection), target.as_map())
    got = [
        (key, serde.deserialize(value))
        for key, value in read_topic(cluster.connection, target.orders)
    ]
    late = str(seeded["late"].order_id)
    assert [type(e).__name__ for k, e in got if k == late] == ["OrderPlaced", "OrderConfirmed"]
    inside = next(
        e for _, e in got if isinstance(e, OrderPlaced) and e.order_id == seeded["inside"].order_id
    )
    assert card_last4(inside.card_token) == "0002" and inside.email.endswith("@example.com")


def test_a_changed_or_cut_file_is_refused(
    cluster: Cluster, topics: Topics, seeded: dict[str, OrderPlaced], tmp_path: Path
) -> None:
    out = tmp_path / "window.jsonl.gz"
    capture_to_file(
        out,
        cluster.connection,
        [topics.orders],
        WINDOW,
        Tokeniser(DEV_KEY),
        "dev",
    )
    lines = gzip.decompress(out.read_bytes()).splitlines(keepends=True)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(b"".join(lines[:-1])))
    with pytest.raises(CaptureFileError, match="checksum"):
        read_capture(tmp_path / "cut.gz")
    with pytest.raises(CaptureFileError, match="checksum"):
        CaptureFile(tmp_path / "cut.gz")  # refused before a record is read
    (tmp_path / "half.gz").write_bytes(out.read_bytes()[: len(out.read_bytes()) // 2])
    with pytest.raises(CaptureFileError, match="not a complete"):
        read_capture(tmp_path / "half.gz")

    damaged = bytearray(out.read_bytes())
    for at in range(len(damaged) // 3, len(damaged) // 3 + 64):
        damaged[at] ^= 0xFF
    (tmp_path / "damaged.gz").write_bytes(bytes(damaged))
    with pytest.raises(CaptureFileError):  # a message, not a traceback from the decompressor
        CaptureFile(tmp_path / "damaged.gz")

    # A record whose writer schema is not embedded, checksum and all: refused as it is opened.
    manifest_line, *rest = lines
    records_only = [line for line in rest if not line.startswith(b'{"schema"')]
    forged = json.loads(manifest_line)
    forged["manifest"]["sha256"] = hashlib.sha256(b"".join(records_only)).hexdigest()
    (tmp_path / "forged.gz").write_bytes(
        gzip.compress(b"".join([json.dumps(forged).encode() + b"\n", *records_only]))
    )
    with pytest.raises(CaptureFileError, match="not embedded"):
        CaptureFile(tmp_path / "forged.gz")

    # Changed after it was opened and checked: the stream fails at its end, not silently.
    opened = CaptureFile(out)
    *head, last = lines
    record = json.loads(last)
    record["record"]["offset"] += 1
    out.write_bytes(gzip.compress(b"".join([*head, json.dumps(record).encode() + b"\n"])))
    with pytest.raises(CaptureFileError, match="changed while it was read"):
        list(opened.iter_records())


def test_a_long_capture_is_bounded_by_stalls_not_by_its_length(
    cluster: Cluster, topics: Topics, tmp_path: Path
) -> None:
    """The stall timeout counts from the last progress, not from the start. A clock that moves
    a second at every look: 60,000 records take 60 looks or more (a thousand a look at most),
    and 30 looks in a row without progress would be 6 s of a silent broker."""
    at = ms(WINDOW_START + timedelta(seconds=1))
    publish(cluster, topics, [(b"not the wire format", at, f"k{i}") for i in range(60_000)])
    ticks = itertools.count()
    options = CaptureOptions(
        skew=timedelta(seconds=1), stall_s=30, clock=lambda: float(next(ticks))
    )
    manifest = capture_to_file(
        tmp_path / "long.jsonl.gz",
        cluster.connection,
        [topics.orders],
        WINDOW,
        None,
        None,
        options,
    )
    assert manifest.undecodable == {topics.orders: 60_000}
    assert next(ticks) > 30, "the capture took too few looks to prove anything"
