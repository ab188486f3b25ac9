"""The references for make bench: a bare FastAPI endpoint with the order API's request model;
the same behind the bearer-token check the services use (golive_eventing.auth), so the check's
cost is measured in the same run; and the same again writing the order to Kafka and answering
once the broker acknowledged it (acks=all, idempotent): the least a durable POST /orders can do,
with plain confluent-kafka, no registry, no database."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from pathlib import Path

import uvicorn
from confluent_kafka import KafkaError, KafkaException, Message
from fastapi import FastAPI
from golive_contracts.scopes import Scope
from golive_eventing import clients
from golive_eventing.auth import Verifier, require, use_tokens
from golive_eventing.settings import AuthSettings, KafkaSettings
from golive_order.domain.order import OrderStatus
from golive_order.entrypoints.models import OrderAccepted, OrderCreate

app = FastAPI()
DURABLE_TOPIC = "bench.durable-echo"  # the reference's; a system floor names its own


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


class Durable:
    """One idempotent producer; its delivery reports served on a thread of their own."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.producer = clients.producer(
            clients.Connection(),
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": KafkaSettings.model_fields["linger_ms"].default,
            },
        )
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            self.producer.poll(0.1)

    async def write(self, key: bytes, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                loop.call_soon_threadsafe(done.set_result, None)
            else:
                loop.call_soon_threadsafe(done.set_exception, KafkaException(err))

        self.producer.produce(self.topic, value, key, on_delivery=settle)
        await done


durable: Durable | None = None


@app.post(
    "/durable/orders",
    status_code=202,
    response_model=OrderAccepted,
    dependencies=[require(Scope.PLACE_ORDERS)],
)
async def echo_durable(order: OrderCreate) -> OrderAccepted:
    assert durable is not None
    order_id = uuid.uuid4()
    await durable.write(str(order_id).encode(), order.model_dump_json().encode())
    return OrderAccepted(order_id=order_id, status=OrderStatus.PLACED)


if __name__ == "__main__":  # echo_app.py PORT JWKS_FILE [TOPIC]; Kafka from the environment
    use_tokens(app, Verifier(AuthSettings(auth_jwks_file=Path(sys.argv[2]))))
    durable = Durable(sys.argv[3] if len(sys.argv) > 3 else DURABLE_TOPIC)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
