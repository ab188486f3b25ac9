"""Payment's HTTP API: GET /payments/{order_id}, the decision made for an order."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from golive_contracts.scopes import Scope
from golive_eventing.auth import RESPONSES, require
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from golive_payment.adapters import payments


class PaymentPublic(BaseModel):
    order_id: uuid.UUID
    payment_id: uuid.UUID
    status: str
    reason: str | None
    amount_minor: int
    currency: str
    decided_at: datetime


# async, as every dependency of a route here: FastAPI runs a plain def on its thread pool,
# a thread hop per request (tests/unit/test_routes.py).
async def _engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


EngineDep = Annotated[Engine, Depends(_engine)]
router = APIRouter(tags=["payments"], responses=RESPONSES)


@router.get(
    "/payments/{order_id}",
    response_model=PaymentPublic,
    responses={404: {"description": "No decision yet"}},
    dependencies=[require(Scope.READ_PAYMENTS)],
)
async def read_payment(order_id: uuid.UUID, engine: EngineDep) -> Any:
    found = await run_in_threadpool(payments.get_payment, engine, str(order_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no payment decision for order {order_id}")
    return found
