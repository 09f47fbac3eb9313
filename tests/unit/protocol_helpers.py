"""Plain helpers shared by the wire/protocol.py unit tests: build frames, parse or reject them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server.wire.arguments import Limits
from server.wire.protocol import Rejected, Request, parse_frame

LIMITS = Limits()
UUID = "3f2b8c1e-9d4a-4c7e-8f10-2a6b5c9d0e11"


def parse(obj: Any, limits: Limits = LIMITS) -> Request:
    return parse_frame(orjson.dumps(obj).decode(), binary=False, limits=limits)


def rejected(obj: Any, limits: Limits = LIMITS) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse(obj, limits)
    return info.value


def rejected_raw(frame: str | bytes, *, binary: bool = False) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_frame(frame, binary=binary, limits=LIMITS)
    return info.value


def code_of(obj: Any, limits: Limits = LIMITS) -> str:
    return rejected(obj, limits).error.code


def send_frame(**override: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "send", "id": 1, "to": "bob", "body": "hi", "msg_id": UUID}
    frame.update(override)
    return {k: v for k, v in frame.items() if v is not _DROP}


def register_frame(**override: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "register", "id": 1, "username": "alice",
                             "password": "correct horse"}
    frame.update(override)
    return {k: v for k, v in frame.items() if v is not _DROP}


_DROP: Any = object()
