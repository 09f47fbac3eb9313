"""Plain data the client hands to applications (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from client.errors import BadRequest

__all__ = ["FetchResult", "LoginResult", "Message", "SendResult", "State", "Status"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as PROTOCOL.md's message object (`from` is `sender`)."""

    msg_id: str
    sender: str
    to: str
    body: str
    ts: int
    seq: str

    @property
    def key(self) -> tuple[str, str]:
        """Identity for dedupe: msg_ids are unique per sender only."""
        return (self.sender, self.msg_id)

    @classmethod
    def from_wire(cls, data: Any) -> Message:
        """Parse a wire message object; malformed data is a `BadRequest`."""
        if not isinstance(data, dict):
            raise BadRequest(f"message is not an object: {data!r}")
        try:
            return cls(
                msg_id=str(data["msg_id"]),
                sender=str(data["from"]),
                to=str(data["to"]),
                body=str(data["body"]),
                ts=int(data["ts"]),
                seq=str(data["seq"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"malformed message {data!r}: {exc}") from exc

    def to_wire(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "from": self.sender,
            "to": self.to,
            "body": self.body,
            "ts": self.ts,
            "seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class SendResult:
    """The server's acknowledgement of a durable send."""

    msg_id: str
    ts: int

    def __iter__(self) -> Any:
        # Lets callers write `msg_id, ts = await client.send(...)`.
        return iter((self.msg_id, self.ts))


@dataclass(frozen=True, slots=True)
class LoginResult:
    username: str
    unread: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    messages: list[Message]
    unread: int  # left in the inbox after these


class State(enum.Enum):
    """Connection state, for status lines."""

    IDLE = "idle"  # connect() not called yet
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Status:
    state: State
    url: str | None  # the instance we are connected to, when CONNECTED
    username: str | None  # the logged-in user, if any
