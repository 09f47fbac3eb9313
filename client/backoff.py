"""Pure policies for reconnecting: jittered exponential backoff, URL rotation."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

__all__ = ["Backoff", "UrlRotation"]


class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2**n)].

    Full jitter keeps many clients that lost the same instance from coming
    back in lock-step and hammering the survivor at the same instants.
    """

    def __init__(
        self, *, base: float = 0.1, cap: float = 5.0, rng: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng

    def ceiling(self, attempt: int) -> float:
        # min() before the power would overflow: cap the exponent instead.
        return min(self.cap, self.base * float(2 ** min(attempt, 62)))

    def next_delay(self) -> float:
        delay = self._rng() * self.ceiling(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class UrlRotation:
    """Round-robin over server URLs, skipping ones that asked us to stay away.

    A `shutdown` event carries retry_after_ms: that instance is draining, so
    we avoid it until then but may go to any other instance at once.
    """

    def __init__(
        self, urls: Sequence[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not urls:
            raise ValueError("at least one server URL is needed")
        self.urls = list(urls)
        self._next = 0
        self._not_before: dict[str, float] = {}
        self._clock = clock

    def avoid(self, url: str, seconds: float) -> None:
        self._not_before[url] = self._clock() + max(0.0, seconds)

    def pick(self) -> tuple[str, float]:
        """Return the next URL and how long to wait before dialling it.

        Prefers the next URL in order that is not being avoided; when all are,
        returns the one that becomes available soonest with its wait.
        """
        now = self._clock()
        count = len(self.urls)
        best: tuple[str, float] | None = None
        for step in range(count):
            index = (self._next + step) % count
            url = self.urls[index]
            wait = self._not_before.get(url, 0.0) - now
            if wait <= 0:
                self._next = index + 1
                return url, 0.0
            if best is None or wait < best[1]:
                best = (url, wait)
                best_index = index
        assert best is not None  # count >= 1, so the loop set it
        self._next = best_index + 1
        return best
