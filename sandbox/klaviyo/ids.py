"""Identifiers shaped like Klaviyo's: 26-character ULID-like uppercase ids, short metric ids."""

from __future__ import annotations

import random
import string

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdFactory:
    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)

    def ulid(self, now: float) -> str:
        """48 bits of milliseconds then 80 random bits, Crockford base32: sortable by creation time."""
        value = (int(now * 1000) & (2**48 - 1)) << 80 | self._random.getrandbits(80)
        chars = []
        for _ in range(26):
            chars.append(_CROCKFORD[value & 31])
            value >>= 5
        return "".join(reversed(chars))

    def metric_id(self) -> str:
        return "".join(self._random.choices(string.ascii_letters + string.digits, k=6))
