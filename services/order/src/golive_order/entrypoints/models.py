"""pydantic at the HTTP edge: OrderCreate in, OrderPublic out. Strict: bad input is a 422 with field errors."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

import pycountry
from golive_contracts.money import exponent, major_to_minor
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator

from golive_order.domain.order import OrderStatus

MAX_LINES = 100
# A unit price above a million whole units of the currency is a typo or an attack, not an order.
MAX_UNIT_PRICE_MAJOR = 1_000_000


def _currency(code: str) -> str:
    exponent(code)  # raises ValueError naming the code
    return code


def _country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"]), AfterValidator(_currency)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["NL"]), AfterValidator(_country)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: Country


class LineIn(Strict):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: int = Field(
        ge=0, description="Price of one unit in minor units (cents for EUR)."
    )


class OrderCreate(Strict):
    customer_id: str = Field(min_length=1, max_length=64)
    email: EmailStr
    shipping_address: AddressIn
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    currency: Currency
    card_token: str = Field(
        pattern=r"^tok_[A-Za-z0-9]{1,64}_[0-9]{4}$",
        description="A payment card token: tok_<id>_<last four digits>.",
        examples=["tok_visa_4242"],
    )

    @model_validator(mode="after")
    def _sane_prices(self) -> Self:
        limit = major_to_minor(MAX_UNIT_PRICE_MAJOR, self.currency)
        for index, line in enumerate(self.lines):
            if line.unit_price_minor > limit:
                raise ValueError(
                    f"lines[{index}].unit_price_minor {line.unit_price_minor} is above "
                    f"{MAX_UNIT_PRICE_MAJOR} {self.currency} ({limit} minor units)"
                )
        return self


class OrderAccepted(BaseModel):
    order_id: uuid.UUID
    status: OrderStatus


class LinePublic(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int


class OrderPublic(BaseModel):
    order_id: uuid.UUID
    customer_id: str
    status: OrderStatus
    currency: str
    total_minor: int
    lines: list[LinePublic]
    placed_at: datetime
    updated_at: datetime
    cancel_reason: str | None = None


class OrderPage(BaseModel):
    items: list[OrderPublic]
    next_cursor: str | None = None
