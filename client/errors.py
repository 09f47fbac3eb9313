"""The error codes of PROTOCOL.md as one exception tree, plus client-side failures.

Every failure the library raises is a `ChatError`. `RetryableError` marks the
ones worth retrying (the server said `unavailable` / `rate_limited`, or the
connection was lost or timed out); everything else is fatal for the request.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccountDeleted",
    "BadCredentials",
    "BadRequest",
    "BadToken",
    "ChatError",
    "ClientClosed",
    "ConnectionLost",
    "FatalError",
    "Internal",
    "InvalidPassword",
    "InvalidUsername",
    "NoSuchUser",
    "RateLimited",
    "RequestTimeout",
    "RetryableError",
    "SessionEnded",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Unconfirmed",
    "UnknownError",
    "UsernameTaken",
    "error_from_reply",
    "is_retryable",
]


class ChatError(Exception):
    """Base of every error the client raises; `code` is the PROTOCOL.md code."""

    code: ClassVar[str] = "error"

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        self.detail = detail
        if code is not None:
            # Instance attribute shadows the class default only for unknown codes.
            self.code = code  # type: ignore[misc]
        super().__init__(f"{self.code}: {detail}" if detail else self.code)


class RetryableError(ChatError):
    """A transient failure: the same request may succeed later or elsewhere."""


class FatalError(ChatError):
    """Retrying the same request will not help."""


# --- retryable -------------------------------------------------------------


class Unavailable(RetryableError):
    """The server cannot promise durability right now (no primary, replicas slow)."""

    code = "unavailable"


class RateLimited(RetryableError):
    """Too many requests (e.g. failed logins) from this address; wait and retry."""

    code = "rate_limited"


class ConnectionLost(RetryableError):
    """The WebSocket closed (or could not be opened) before the reply arrived."""

    code = "connection_lost"


class RequestTimeout(RetryableError):
    """No reply within the request timeout; the connection is dropped and redone."""

    code = "timeout"


# --- fatal: one class per PROTOCOL.md code ---------------------------------


class BadRequest(FatalError):
    code = "bad_request"


class Unauthenticated(FatalError):
    """The op needs a session: log in (or resume) first."""

    code = "unauthenticated"


class InvalidUsername(FatalError):
    code = "invalid_username"


class InvalidPassword(FatalError):
    code = "invalid_password"


class UsernameTaken(FatalError):
    code = "username_taken"


class BadCredentials(FatalError):
    code = "bad_credentials"


class BadToken(FatalError):
    """The session token is no longer valid (logged out, account deleted, expired)."""

    code = "bad_token"


class NoSuchUser(FatalError):
    code = "no_such_user"


class TooLarge(FatalError):
    code = "too_large"


class Internal(FatalError):
    code = "internal"


class UnknownError(FatalError):
    """A code this client version does not know (servers may add codes)."""


# --- client-side fatal conditions --------------------------------------------


class AccountDeleted(FatalError):
    """This account was deleted (here or from another connection); the session is over."""

    code = "account_deleted"


class Unconfirmed(FatalError):
    """A send got no reply within the server's dedupe window, so it is not resent.

    A resend after the window could store the message twice; whether the
    first attempt was stored is unknown (the recipient may have it).
    """

    code = "unconfirmed"


class SessionEnded(FatalError):
    """The session was ended from elsewhere (PROTOCOL.md `session_ended`).

    `reason`: "logout" (logged out, or out everywhere), "password_changed",
    "replaced" (too many sessions: this was the oldest) or "expired". The
    connection stays; the token is dropped (never resumed): log in again.
    """

    code = "session_ended"

    def __init__(self, detail: str = "", *, code: str | None = None, reason: str = "") -> None:
        super().__init__(detail, code=code)
        self.reason = reason

    @classmethod
    def because(cls, reason: str) -> SessionEnded:
        """The error for a session_ended event with this `reason`."""
        return cls(_END_REASONS.get(reason, f"session ended ({reason}); log in again"),
                   reason=reason)


_END_REASONS = {
    "logout": "logged out from another connection; log in again",
    "password_changed": "the password was changed from another connection; log in again",
    "replaced": "too many sessions: a new login ended this oldest one; log in again",
    "expired": "the session expired; log in again",
}


class ClientClosed(FatalError):
    """The ChatClient was closed while the call was waiting."""

    code = "closed"


_BY_CODE: dict[str, type[ChatError]] = {
    cls.code: cls
    for cls in (
        Unavailable,
        RateLimited,
        BadRequest,
        Unauthenticated,
        InvalidUsername,
        InvalidPassword,
        UsernameTaken,
        BadCredentials,
        BadToken,
        NoSuchUser,
        TooLarge,
        Internal,
    )
}


def error_from_reply(reply: dict[str, Any]) -> ChatError:
    """Build the exception for a `{"ok": false, "error": CODE, "detail": ...}` reply."""
    code = str(reply.get("error") or "internal")
    detail = str(reply.get("detail") or "")
    cls = _BY_CODE.get(code)
    if cls is None:
        return UnknownError(detail, code=code)
    return cls(detail)


def is_retryable(error: BaseException) -> bool:
    """True for the failures PROTOCOL.md says are worth retrying."""
    return isinstance(error, RetryableError)
