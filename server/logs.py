"""Log setup: one line per event, as text or JSON, tagged with the instance."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson


class _InstanceFilter(logging.Filter):
    def __init__(self, instance_id: str) -> None:
        super().__init__()
        self.instance_id = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "instance": getattr(record, "instance", ""),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


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
