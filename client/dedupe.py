"""Bounded memory of (sender, msg_id) pairs already handed to the application."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["SeenSet"]


class SeenSet:
    """An LRU set: remembers the newest `capacity` keys, forgets the oldest.

    Delivery is at-least-once, so a message can come twice (pushed and then
    fetched after a reconnect). Duplicates arrive close to the original, so a
    window of the newest 100k keys catches them with bounded memory.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: tuple[str, str]) -> bool:
        """Remember `key`; return False if it was already there (a duplicate)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True
