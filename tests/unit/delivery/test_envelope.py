"""A new envelope's wire form, built without the model, is exactly what the model makes of it."""

from __future__ import annotations

from delivery.envelope import Envelope, envelope
from sync.operations import Operation


def test_a_new_envelope_is_the_models_wire_form_and_reads_back_whole() -> None:
    ops = [Operation(kind="event", key=f"event:Placed Order:SO{n}", lane="batch", version="v1",
                     payload={"metric": "Placed Order", "properties": {"value": 12.5, "items": [{"sku": "A"}]}})
           for n in range(3)]
    wire = envelope(ops, "batch")
    model = Envelope.model_validate(wire)
    assert wire == model.to_message()
    assert list(wire) == list(model.to_message())  # the same keys in the same order
    assert [Operation.model_validate(o) for o in model.operations] == ops
    assert model.lane == "batch" and model.kind == "event" and model.attempts == [] and model.created
