"""Async client library for the chat service, and the `python -m client` CLI.

Public API: `ChatClient`, the data classes in `client.models` and the
exception tree in `client.errors` (all re-exported here).
"""

from client.connection import ChatClient
from client.errors import (
    AccountDeleted,
    BadCredentials,
    BadRequest,
    BadToken,
    ChatError,
    ClientClosed,
    ConnectionLost,
    FatalError,
    Internal,
    InvalidPassword,
    InvalidUsername,
    NoSuchUser,
    RateLimited,
    RequestTimeout,
    RetryableError,
    SessionEnded,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Unconfirmed,
    UnknownError,
    UsernameTaken,
    is_retryable,
)
from client.models import FetchResult, LoginResult, Message, SendResult, State, Status

__all__ = [
    "AccountDeleted",
    "BadCredentials",
    "BadRequest",
    "BadToken",
    "ChatClient",
    "ChatError",
    "ClientClosed",
    "ConnectionLost",
    "FatalError",
    "FetchResult",
    "Internal",
    "InvalidPassword",
    "InvalidUsername",
    "LoginResult",
    "Message",
    "NoSuchUser",
    "RateLimited",
    "RequestTimeout",
    "RetryableError",
    "SendResult",
    "SessionEnded",
    "State",
    "Status",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Unconfirmed",
    "UnknownError",
    "UsernameTaken",
    "is_retryable",
]
