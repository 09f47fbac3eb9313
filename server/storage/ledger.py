"""Which topology snapshot each durable write in flight read its required replicas from.

The group commit (server/data/commit.py) enters the ledger for every batch
and leaves it when the batch's WAIT returns; the fencer
(server/storage/fencer.py) lifts a fence only when no batch that read an
older snapshot is still waiting, so no write is acked without a replica
that has just become promotable.
"""

from __future__ import annotations

from collections import Counter


class WaitLedger:
    """Which topology snapshot each batch in flight read its required count from.

    The topology bumps `epoch` at every snapshot it publishes. A replica that
    becomes required at epoch E may have its fence lifted (become promotable)
    only when no batch that read an earlier snapshot is still in flight:
    such a batch may be acked without it.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self._in_flight: Counter[int] = Counter()

    def advance(self) -> int:
        self.epoch += 1
        return self.epoch

    def enter(self) -> int:
        self._in_flight[self.epoch] += 1
        return self.epoch

    def leave(self, epoch: int) -> None:
        self._in_flight[epoch] -= 1
        if self._in_flight[epoch] <= 0:
            del self._in_flight[epoch]

    def none_before(self, epoch: int) -> bool:
        """No batch that read a snapshot older than `epoch` is in flight."""
        return all(e >= epoch for e in self._in_flight)
