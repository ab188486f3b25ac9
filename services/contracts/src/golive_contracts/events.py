"""The events of the order journey. Facts, in the past tense; money in integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from golive_contracts.envelope import Envelope, Record
from golive_contracts.fields import personal, public
from golive_contracts.topology import ORDERS, PAYMENTS, PII_ACCESS, RELEASES


class Event(Record):
    """An event: an envelope plus its facts. `topic` is the logical topic it belongs on."""

    topic: ClassVar[str]
    envelope: Envelope = public("Identity, time, journey and provenance of the event.")

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    @classmethod
    def full_name(cls) -> str:
        return f"{cls.avro_namespace}.{cls.__name__}"


class Address(Record):
    avro_namespace: ClassVar[str] = "dev.golive.orders"
    name: str = personal("Recipient's name.")
    line1: str = personal("Street and number.")
    line2: str | None = personal("Flat, floor, building.", default=None)
    city: str = personal("City.")
    postal_code: str = personal("Postal code.")
    country: str = public("ISO 3166-1 alpha-2 country code.")


class OrderLine(Record):
    avro_namespace: ClassVar[str] = "dev.golive.orders"
    sku: str = public("Stock keeping unit.")
    quantity: int = public("Units ordered, at least 1.")
    unit_price_minor: int = public("Price of one unit in minor units of the order's currency.")


class OrderPlaced(Event):
    avro_namespace: ClassVar[str] = "dev.golive.orders"
    topic: ClassVar[str] = ORDERS
    order_id: uuid.UUID = public("The order, derived from the client's Idempotency-Key.")
    customer_id: str = personal("The customer's account id.")
    email: str = personal("Where the customer is told about the order.")
    shipping_address: Address = personal("Where the order goes.")
    lines: list[OrderLine] = public("What was ordered, 1 to 100 lines.")
    currency: str = public("ISO 4217 code of every amount in this order.")
    total_minor: int = public("Sum of quantity x unit price over the lines, in minor units.")
    card_token: str = personal("Payment card token (tok_<id>_<last four digits>).")
    placed_at: datetime = public("When the order was accepted.")
    # v2. Records written with v1 read as "api": the only channel there was.
    channel: str = public("Where the order came in: api, web or app.", default="api")


class OrderConfirmed(Event):
    avro_namespace: ClassVar[str] = "dev.golive.orders"
    topic: ClassVar[str] = ORDERS
    order_id: uuid.UUID = public("The confirmed order.")


class OrderCancelled(Event):
    avro_namespace: ClassVar[str] = "dev.golive.orders"
    topic: ClassVar[str] = ORDERS
    order_id: uuid.UUID = public("The cancelled order.")
    reason: str = public("Why, e.g. payment_declined:insufficient_funds or payment_timeout.")


# The events that end an order's journey: one of them, once, for every order placed.
JOURNEY_ENDS = (OrderConfirmed, OrderCancelled)


class PaymentAuthorized(Event):
    avro_namespace: ClassVar[str] = "dev.golive.payments"
    topic: ClassVar[str] = PAYMENTS
    order_id: uuid.UUID = public("The order paid for.")
    payment_id: uuid.UUID = public("This authorisation.")
    amount_minor: int = public("Amount authorised, in minor units.")
    currency: str = public("ISO 4217 code of the amount.")


class PaymentDeclined(Event):
    avro_namespace: ClassVar[str] = "dev.golive.payments"
    topic: ClassVar[str] = PAYMENTS
    order_id: uuid.UUID = public("The order whose payment was declined.")
    payment_id: uuid.UUID = public("This decision.")
    amount_minor: int = public("Amount asked for, in minor units.")
    currency: str = public("ISO 4217 code of the amount.")
    reason: str = public("Why, e.g. card_declined, insufficient_funds, amount_over_limit.")


class PersonalDataRead(Event):
    """Someone was shown personal data: the audit API records the read before it answers."""

    avro_namespace: ClassVar[str] = "dev.golive.audit"
    topic: ClassVar[str] = PII_ACCESS
    reader: str = personal("Who read it: the subject of the caller's access token.")
    token_id: str | None = public("The access token's id (jti), when it has one.", default=None)
    request: str = public("What was asked for: method, path and query.")
    records: int = public("How many recorded events were shown with their personal data.")
    first_seq: int | None = public("The audit store's seq of the first one shown.", default=None)
    last_seq: int | None = public("The audit store's seq of the last one shown.", default=None)
    read_at: datetime = public("When it was read.")


class ReleaseRouteChanged(Event):
    """A release action on a routed group (`golive release`), recorded before it takes effect:
    an incident is lined up with the release that caused it (audit's GET /releases). Keyed by
    the group: a group's releases are in order on one partition."""

    avro_namespace: ClassVar[str] = "dev.golive.releases"
    topic: ClassVar[str] = RELEASES
    group: str = public("The routed group, e.g. payment.")
    action: str = public("shadow, canary, switch, rollback or promote.")
    by: str = personal("Who took it: GOLIVE_ACTOR, or the operator's login at the host.")
    reason: str | None = public("Why, as the operator gave it (--reason).", default=None)
    mode_before: str = public("The route before: live, shadow, canary or switched.")
    mode: str = public("The route after: live, shadow, canary or switched.")
    live: str = public("The live version slot after, e.g. blue.")
    candidate: str = public("The candidate version slot after, e.g. green.")
    live_version: str = public("The version the live slot runs.")
    candidate_version: str = public("The version the candidate slot runs.")
    candidate_share: int = public("Percent of new keys the candidate decides after (0 to 100).")
    shadow: bool = public("Whether the candidate gets a shadow copy of every input after.")
    route: str = public("The route after, in words (what `golive release status` shows).")
    where: str = public("Where the route was written: the flags file or ConfigMap.")
    changed_at: datetime = public("When it was taken.")


EVENT_TYPES: tuple[type[Event], ...] = (
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    PaymentAuthorized,
    PaymentDeclined,
    PersonalDataRead,
    ReleaseRouteChanged,
)
BY_FULL_NAME: dict[str, type[Event]] = {cls.full_name(): cls for cls in EVENT_TYPES}
