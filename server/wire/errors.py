"""The error codes of PROTOCOL.md as one exception tree.

Every failure a client can see is a ChatError subclass; its `code` is the
wire code and `detail` the human text. Anything else escaping a handler is
reported as `internal` (and logged), never as a traceback on the wire.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of every error that is answered with `ok: false`."""

    code = "internal"
    #: Whether a client should retry the same request (PROTOCOL.md).
    retryable = False

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")


class BadRequest(ChatError):
    """Unparseable frame, unknown op, missing/mistyped/out-of-range argument."""

    code = "bad_request"


class Unauthenticated(ChatError):
    """An op other than register/login/resume before a session exists."""

    code = "unauthenticated"


class InvalidUsername(ChatError):
    """A well-typed username that breaks the naming rules."""

    code = "invalid_username"


class InvalidPassword(ChatError):
    """A well-typed password that is too short or too long."""

    code = "invalid_password"


class UsernameTaken(ChatError):
    """register of a name that already exists."""

    code = "username_taken"


class BadCredentials(ChatError):
    """Wrong username/password at login or delete_account."""

    code = "bad_credentials"


class BadToken(ChatError):
    """resume with a token that is unknown, expired or revoked."""

    code = "bad_token"


class NoSuchUser(ChatError):
    """send to a name that has no account."""

    code = "no_such_user"


class TooLarge(ChatError):
    """A message body over the limit, or a recipient inbox that is full."""

    code = "too_large"


class RateLimited(ChatError):
    """Too many requests or failed logins; retry later."""

    code = "rate_limited"
    retryable = True


class Unavailable(ChatError):
    """The server cannot promise durability now (no primary, no replica ack)."""

    code = "unavailable"
    retryable = True


class Internal(ChatError):
    """A bug or an unexpected failure; logged with context on the server."""

    code = "internal"


ALL_CODES: tuple[type[ChatError], ...] = (
    BadRequest, Unauthenticated, InvalidUsername, InvalidPassword, UsernameTaken,
    BadCredentials, BadToken, NoSuchUser, TooLarge, RateLimited, Unavailable, Internal,
)
