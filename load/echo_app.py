"""The reference for make bench: a bare FastAPI endpoint with the order API's request model."""

from __future__ import annotations

import sys
import uuid

import uvicorn
from fastapi import FastAPI
from golive_order.domain.order import OrderStatus
from golive_order.entrypoints.models import OrderAccepted, OrderCreate

app = FastAPI()


@app.post("/orders", status_code=202, response_model=OrderAccepted)
async def echo(order: OrderCreate) -> OrderAccepted:
    del order
    return OrderAccepted(order_id=uuid.uuid4(), status=OrderStatus.PLACED)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
