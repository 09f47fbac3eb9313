"""Log setup: one line per event, as text or JSON, tagged with the instance."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Any

import orjson


def instance_name(configured: str, host: str, port: int) -> str:
    """--instance-id, else host:port, else (port 0) hostname:pid."""
    if configured:
        return configured
    if port:
        return f"{host}:{port}"
    return f"{socket.gethostname()}:{os.getpid()}"


class _InstanceFilter(logging.Filter):
    def __init__(self, instance_id: str) -> None:
        super().__init__()
        self.instance_id = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance_id
        return True


#: Attributes every LogRecord has; anything else came from `extra=` and
#: becomes a field of its own in JSON lines (op, user, result, latency_ms...).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "instance", "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, instance, logger, msg, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "instance": getattr(record, "instance", ""),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup(*, fmt: str, level: str, instance_id: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_InstanceFilter(instance_id))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [%(instance)s] %(name)s: %(message)s"
        ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # websockets logs every failed handshake at INFO; keep those for DEBUG.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
