"""`python -m server`: flags and CHAT_* variables -> Settings -> run()."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from server import logs
from server.settings import Settings, fields, value_type


def env_name(field_name: str) -> str:
    return "CHAT_" + field_name.upper()


def build_parser(prog: str = "python -m server") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Chat server: WebSocket at /ws, GET /healthz, /readyz and /metrics on one "
        "port. Every flag also reads the environment variable named in brackets.",
        epilog="`python -m server check [same flags]` checks the configuration and the Redis "
        "set (reachable, password, Sentinel majority and agreement, replicas, AOF) without "
        "serving; exit 0 when nothing failed.",
    )
    for f in fields():
        meta = f.metadata
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "type": value_type(f),
            "help": f"{meta['help']} [{env_name(f.name)}; default: {f.default}]",
        }
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    return parser


def load_settings(
    argv: Sequence[str], environ: Mapping[str, str], *, prog: str = "python -m server"
) -> Settings:
    """Flags win over CHAT_* variables, which win over defaults."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for f in fields():
        flag = getattr(args, f.name)
        if flag is not None:
            values[f.name] = flag
            continue
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            try:
                values[f.name] = value_type(f)(raw)
            except ValueError:
                parser.error(f"{env_name(f.name)}={raw!r} is not a valid "
                             f"{value_type(f).__name__}")
            choices = f.metadata.get("choices")
            if choices and values[f.name] not in choices:
                parser.error(f"{env_name(f.name)} must be one of {', '.join(choices)}")
    settings = Settings(**values)
    try:
        settings.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return settings


def loop_factory(environ: Mapping[str, str]) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed: its transports make the many small socket
    writes of a send cheaper (measured in docs/benchmarks.md).
    CHAT_EVENT_LOOP=asyncio keeps the standard loop."""
    if environ.get("CHAT_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"]:
        return check_main(args[1:])
    settings = load_settings(args, os.environ)
    logs.setup(fmt=settings.log_format, level=settings.log_level,
               instance_id=logs.instance_name(settings.instance_id, settings.host, settings.port))
    from server.app import run  # after logging is set up

    try:
        with asyncio.Runner(loop_factory=loop_factory(os.environ)) as runner:
            return runner.run(run(settings))
    except (OSError, ValueError) as exc:
        # One line through the log set up above (a taken port, a bad cert...).
        logging.getLogger("server").error("cannot start: %s", exc)
        return 1


def check_main(argv: Sequence[str]) -> int:
    """`python -m server check`: plain-words report on stdout, exit 0 or 1."""
    settings = load_settings(argv, os.environ, prog="python -m server check")
    logs.setup(fmt=settings.log_format, level="ERROR", instance_id="check")
    from server import check

    return asyncio.run(check.run(settings))


if __name__ == "__main__":
    sys.exit(main())

