"""Error replies become typed exceptions; retryable vs fatal per PROTOCOL.md."""

from __future__ import annotations

import pytest

from client import errors
from client.present import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    error_line,
    exit_code_for,
)

PROTOCOL_CODES = {
    "bad_request": errors.BadRequest,
    "unauthenticated": errors.Unauthenticated,
    "invalid_username": errors.InvalidUsername,
    "invalid_password": errors.InvalidPassword,
    "username_taken": errors.UsernameTaken,
    "bad_credentials": errors.BadCredentials,
    "bad_token": errors.BadToken,
    "no_such_user": errors.NoSuchUser,
    "too_large": errors.TooLarge,
    "rate_limited": errors.RateLimited,
    "unavailable": errors.Unavailable,
    "internal": errors.Internal,
}


@pytest.mark.parametrize(("code", "cls"), PROTOCOL_CODES.items())
def test_every_protocol_code_maps_to_its_own_exception(
    code: str, cls: type[errors.ChatError]
) -> None:
    error = errors.error_from_reply({"id": 1, "ok": False, "error": code, "detail": "why"})
    assert type(error) is cls
    assert error.code == code
    assert error.detail == "why"
    assert isinstance(error, errors.ChatError)


@pytest.mark.parametrize("code", PROTOCOL_CODES)
def test_only_unavailable_and_rate_limited_are_retryable(code: str) -> None:
    error = errors.error_from_reply({"ok": False, "error": code})
    assert errors.is_retryable(error) is (code in {"unavailable", "rate_limited"})


def test_connection_loss_and_timeout_are_retryable() -> None:
    assert errors.is_retryable(errors.ConnectionLost("gone"))
    assert errors.is_retryable(errors.RequestTimeout("slow"))
    assert not errors.is_retryable(errors.AccountDeleted())


def test_unknown_code_keeps_its_name_and_is_fatal() -> None:
    error = errors.error_from_reply({"ok": False, "error": "new_code", "detail": "x"})
    assert isinstance(error, errors.UnknownError)
    assert error.code == "new_code"
    assert not errors.is_retryable(error)


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (errors.BadCredentials(), EXIT_AUTH),
        (errors.BadToken(), EXIT_AUTH),
        (errors.NoSuchUser(), EXIT_NOT_FOUND),
        (errors.Unavailable(), EXIT_UNAVAILABLE),
        (errors.ConnectionLost(), EXIT_UNAVAILABLE),
        (errors.InvalidUsername(), EXIT_USAGE),
        (errors.UsernameTaken(), EXIT_CONFLICT),
        (errors.Internal(), EXIT_ERROR),
    ],
)
def test_error_classes_map_to_distinct_exit_codes(error: errors.ChatError, exit_code: int) -> None:
    assert exit_code_for(error) == exit_code


def test_error_line_is_one_line_even_for_multiline_detail() -> None:
    line = error_line(errors.Internal("boom\n  at line 3"))
    assert line == "error: internal: boom at line 3"
    assert error_line(errors.NoSuchUser("bob"), as_json=True) == (
        '{"error":"no_such_user","detail":"bob"}'
    )
