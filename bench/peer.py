"""The peer: python-socketio AsyncServer with AsyncRedisManager, and its clients.

Run as `python -m bench.peer --port 0 --redis-url URL` (two instances over
one Redis). A send is one `emit` to the recipient's room through Redis
pub/sub and is acknowledged right after the publish: at-most-once. Nothing
is stored, so a receiver that is away, or a pub/sub hiccup, loses the
message. That is the cheaper guarantee our durable send is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import socketio
from aiohttp import web

from bench.drivers import OnMessage, OnReply


def build_app(redis_url: str) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager,
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)

    @sio.event  # type: ignore[untyped-decorator]
    async def join(sid: str, name: str) -> bool:
        await sio.enter_room(sid, name)
        return True

    @sio.event  # type: ignore[untyped-decorator]
    async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        await sio.emit("message", data, room=data["to"])
        return {"ok": True, "msg_id": data["msg_id"]}

    return app


async def serve(host: str, port: int, redis_url: str) -> None:
    runner = web.AppRunner(build_app(redis_url))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    real_host, real_port = runner.addresses[0][:2]
    print(f"listening on http://{real_host}:{real_port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.uvloop:
        import uvloop

        uvloop.install()
    try:
        asyncio.run(serve(args.host, args.port, args.redis_url))
    except KeyboardInterrupt:
        sys.exit(0)


class SioSender:
    def __init__(self, client: socketio.AsyncClient) -> None:
        self._client = client

    @classmethod
    async def open(cls, url: str) -> SioSender:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"], wait_timeout=30)
        return cls(client)

    async def send(self, to: str, msg_id: str, body: str, on_reply: OnReply) -> None:
        def acked(*_: Any) -> None:
            on_reply(None)

        await self._client.emit("send", {"to": to, "msg_id": msg_id, "body": body},
                                callback=acked)

    async def close(self) -> None:
        await self._client.disconnect()


class SioReceiver:
    def __init__(self, client: socketio.AsyncClient) -> None:
        self._client = client

    @classmethod
    async def open(cls, url: str, name: str, on_message: OnMessage) -> SioReceiver:
        client = socketio.AsyncClient(reconnection=False)

        def on_push(data: dict[str, Any]) -> None:
            on_message(data["msg_id"], data["body"])

        client.on("message", on_push)
        await client.connect(url, transports=["websocket"], wait_timeout=30)
        await client.call("join", name, timeout=30)
        return cls(client)

    async def close(self) -> None:
        await self._client.disconnect()


if __name__ == "__main__":
    main()
