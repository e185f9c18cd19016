"""Envelopes: the message of one delivery - operations of one kind for one lane, plus its attempts so far.

On the wire (task arguments, the delayed-retry schedule, dead letters) an envelope is the JSON object
`envelope()` builds; the engine reads it into `Envelope`. Operations stay raw there, each validated on its
own, so one malformed operation is reported with what it was instead of taking the message down.
Packing operations into envelopes is `delivery.packing`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from state.dead_letters import Attempt
from sync.operations import Operation

MAX_ATTEMPTS_KEPT = 25


class Envelope(BaseModel):
    # a field this version does not know (a newer producer's) travels on untouched
    model_config = ConfigDict(extra="allow")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    lane: str = "default"
    kind: str = "unknown"
    operations: list[dict[str, Any]] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    created: float | None = None
    # when its operations began waiting for a customer's Klaviyo profile id (delivery/identity.py)
    waiting_since: float | None = None

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Envelope:
        """The envelope of a message; whatever its shape, never raises (a broken one is still dead-lettered)."""
        try:
            return cls.model_validate(message)
        except ValueError:
            raw = message if isinstance(message, dict) else {}
            ops = raw.get("operations")
            return cls(id=str(raw.get("id") or uuid.uuid4().hex), lane=str(raw.get("lane") or "default"),
                       kind=str(raw.get("kind") or "unknown"), operations=ops if isinstance(ops, list) else [])

    def to_message(self) -> dict[str, Any]:
        message = self.model_dump(mode="json")
        if message.get("waiting_since") is None:  # the wire shape of envelopes that never waited stays as it was
            message.pop("waiting_since", None)
        return message

    def with_attempt(self, attempt: Attempt) -> Envelope:
        """A copy with one more attempt, keeping the newest `MAX_ATTEMPTS_KEPT`."""
        return self.model_copy(update={"attempts": [*self.attempts, attempt][-MAX_ATTEMPTS_KEPT:]})

    def failures(self) -> int:
        """Attempts that count against `max_attempts`: a 429 is Klaviyo's pace, not the payload's fault."""
        return sum(1 for a in self.attempts if a.status != 429)


def envelope(ops: list[Operation], lane: str) -> dict[str, Any]:
    """The wire form of a new envelope for `ops` (all of one kind) on `lane`: `Envelope(...).to_message()`,
    built directly - through the model, each operation's dict was validated and dumped once more (a backfill
    packs hundreds of thousands)."""
    return {"id": uuid.uuid4().hex, "lane": lane, "kind": ops[0].kind,
            "operations": [op.wire() for op in ops], "attempts": [], "created": time.time()}
