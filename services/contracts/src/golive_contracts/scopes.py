"""What a caller of the HTTP APIs may do: the OAuth2 scopes a bearer token carries.

Declared once here. The services require them (golive_eventing.auth), the OpenAPI documents
list them, `golive token` mints local tokens with them, and an identity provider (Keycloak,
Auth0, Entra ID...) is configured with the same names.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    PLACE_ORDERS = "orders:write"
    READ_ORDERS = "orders:read"
    READ_PAYMENTS = "payments:read"
    READ_AUDIT = "audit:read"
    # With READ_AUDIT: audit responses unmasked, each such read recorded (PersonalDataRead).
    READ_PERSONAL_DATA = "audit:pii"


DESCRIPTIONS: dict[Scope, str] = {
    Scope.PLACE_ORDERS: "Place orders (POST /orders).",
    Scope.READ_ORDERS: "Read orders (GET /orders, GET /orders/{order_id}).",
    Scope.READ_PAYMENTS: "Read payment decisions (GET /payments/{order_id}).",
    Scope.READ_AUDIT: "Read the recorded events, personal data masked (GET /events, timelines).",
    Scope.READ_PERSONAL_DATA: "With audit:read, read the personal data unmasked; every such read "
    "is itself recorded as a PersonalDataRead event.",
}


def parse(names: str) -> frozenset[str]:
    """The scopes of a token's `scope` claim: space-separated (RFC 6749 section 3.3, RFC 9068)."""
    return frozenset(names.split())
