"""The references for make bench: a bare FastAPI endpoint with the order API's request model,
and the same behind the bearer-token check the services use (golive_eventing.auth), so the
check's cost is measured in the same run."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from golive_contracts.scopes import Scope
from golive_eventing.auth import AuthSettings, Verifier, require, use_tokens
from golive_order.domain.order import OrderStatus
from golive_order.entrypoints.models import OrderAccepted, OrderCreate

app = FastAPI()


@app.post("/orders", status_code=202, response_model=OrderAccepted)
async def echo(order: OrderCreate) -> OrderAccepted:
    del order
    return OrderAccepted(order_id=uuid.uuid4(), status=OrderStatus.PLACED)


@app.post(
    "/authenticated/orders",
    status_code=202,
    response_model=OrderAccepted,
    dependencies=[require(Scope.PLACE_ORDERS)],
)
async def echo_authenticated(order: OrderCreate) -> OrderAccepted:
    del order
    return OrderAccepted(order_id=uuid.uuid4(), status=OrderStatus.PLACED)


if __name__ == "__main__":  # echo_app.py PORT JWKS_FILE
    use_tokens(app, Verifier(AuthSettings(auth_jwks_file=Path(sys.argv[2]))))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
