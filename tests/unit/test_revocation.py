"""server/delivery/revocation.py: which local sessions a revocation note ends."""

from __future__ import annotations

from server.delivery import revocation


class Holder:
    def __init__(self, conn_id: str, token_hash: str | None) -> None:
        self.conn_id, self.token_hash = conn_id, token_hash
        self.ended: list[str] = []

    def end_by(self, reason: str, token_hash: str) -> None:
        self.ended.append(reason)


def test_a_note_ends_the_sessions_using_its_tokens_but_not_the_asking_connection() -> None:
    same, asker, other, none = (Holder("c1", "h1"), Holder("c2", "h1"), Holder("c3", "h2"),
                                Holder("c4", None))
    revocation.end_local([same, asker, other, none], {"h1": "logout"}, origin="c2")
    assert same.ended == ["logout"]
    assert asker.ended == [] and other.ended == [] and none.ended == []


def test_each_token_ends_with_its_own_reason() -> None:
    a, b = Holder("c1", "h1"), Holder("c2", "h2")
    revocation.end_local([a, b], {"h1": "replaced", "h2": "password_changed"}, origin="")
    assert (a.ended, b.ended) == (["replaced"], ["password_changed"])
