"""Who answers a customer: the champion, or (``split`` mode) the challenger for a sticky share of customers.

A customer's bucket is a stable hash of its id salted with the challenger's version (blake2b, not Python's
``hash()``, which changes per process): the same customer gets the same model in every worker and after a
restart for the life of a challenger, and each new challenger draws a new sample of customers. In ``shadow``
mode the champion answers everyone and the challenger scores every row beside it.

A :class:`Deployment` is immutable: a swap replaces it whole (one reference assignment), and a request
routes and scores with the one it read when it started.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from churnguard.registry import CHALLENGER, CHAMPION
from churnguard.serving.served import ServedModel

SHADOW, SPLIT = "shadow", "split"
_SCALE = float(2**64)


def bucket(customer_id: str, salt: str) -> float:
    """A number in [0, 1), the same for the same id and salt in any process."""
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True)
class Deployment:
    """The models being served now and how traffic is shared between them."""

    mode: str
    challenger_share: float
    champion: ServedModel | None = None
    challenger: ServedModel | None = None

    def model(self, alias: str) -> ServedModel | None:
        return self.champion if alias == CHAMPION else self.challenger

    def answering(self, customer_id: str) -> str:
        """The alias that answers ``customer_id`` (the champion, when there is no challenger)."""
        if self.mode != SPLIT or self.challenger is None or self.challenger_share <= 0:
            return CHAMPION
        salt = f"{self.challenger.name}:v{self.challenger.version}"
        return CHALLENGER if bucket(customer_id, salt) < self.challenger_share else CHAMPION

    @property
    def shadowing(self) -> ServedModel | None:
        """The model that scores every row beside the answer (shadow mode's challenger), if any."""
        return self.challenger if self.mode == SHADOW else None

    def shares(self) -> dict[str, float]:
        """The share of customers each loaded alias answers."""
        if self.champion is None:
            return {}
        if self.challenger is None:
            return {CHAMPION: 1.0}
        share = self.challenger_share if self.mode == SPLIT else 0.0
        return {CHAMPION: 1.0 - share, CHALLENGER: share}
