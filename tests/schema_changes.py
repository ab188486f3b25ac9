"""OrderPlaced as a careless (or careful) change would leave it: the cases the schema gate judges."""

from __future__ import annotations

from typing import Any

from golive_contracts.events import Event, OrderPlaced
from pydantic import create_model


def changed(
    drop: tuple[str, ...] = (), add: dict[str, tuple[Any, Any]] | None = None
) -> type[Event]:
    """OrderPlaced, same subject and record name, with fields dropped, added or redefined."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in OrderPlaced.model_fields.items()
        if name not in drop
    }
    fields.update(add or {})
    model: type[Event] = create_model("OrderPlaced", __base__=Event, **fields)
    model.avro_namespace = OrderPlaced.avro_namespace
    model.topic = OrderPlaced.topic
    return model
