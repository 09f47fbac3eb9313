"""What one instance answers over plain HTTP on its port, before any upgrade.

/healthz, /readyz and /metrics (details only for --admin-allow addresses),
the web client's files, and whether an upgrade to /ws may go on: an
allowed Origin, and not while draining. server/app.py owns the instance's
lifecycle and hands every request here first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from server import metrics
from server.health import Health
from server.settings import Settings
from server.web import WebFiles
from server.wire import client_address, origins

log = logging.getLogger(__name__)


class Routes:
    """The HTTP side of one port: every request before a WebSocket upgrade."""

    def __init__(
        self, settings: Settings, *, health: Health, tls: bool, draining: Callable[[], bool]
    ) -> None:
        self.settings = settings
        self._health = health
        self._tls = tls
        self._draining = draining
        self.web = WebFiles(public_urls=settings.public_urls, tls=tls)
        self._origins = origins.configured_origins(public_urls=settings.public_urls,
                                                   allowed=settings.allowed_origins)

    def respond(self, connection: ServerConnection, request: Request) -> Response | None:
        """The response to send, or None to go on with the upgrade to /ws."""
        path = request.path.partition("?")[0]
        address = self.client_of(connection, request)
        if path in ("/healthz", "/readyz", "/metrics"):
            return self._operator(connection, path, address)
        if path != "/ws":
            return self.web.respond(request)  # the page, its files, or 404
        own = origins.own_origin(request.headers.get("Host"), tls=self._tls)
        if not origins.origin_allowed(request.headers.get_all("Origin"), self._origins, own):
            log.info("refused /ws from origin %s (%s)",
                     request.headers.get_all("Origin"), address)
            return connection.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        if self._draining():
            # Still listening so /healthz and /readyz can say "draining"; a
            # load balancer retries a refused upgrade on another instance.
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            response.headers["Retry-After"] = str(max(1, self.settings.retry_after_ms // 1000))
            return response
        return None

    def _operator(self, connection: ServerConnection, path: str, address: str) -> Response:
        """/healthz, /readyz, /metrics: details only for --admin-allow addresses."""
        operator = client_address.allowed(address, self.settings.admin_networks)
        if path == "/metrics":
            if not operator:
                return connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
            page, content_type = metrics.exposition()
            return _with_type(connection.respond(HTTPStatus.OK, page.decode()), content_type)
        status, body = self._health.status()
        if path == "/readyz":
            # Ready for new connections: healthy (ok or degraded) and not draining.
            ready = status == HTTPStatus.OK
            body = {"ready": ready, "status": body["status"],
                    **({} if ready or not operator else {"reason": body["reason"]})}
        elif not operator:
            # Reasons and fields name hosts and ports: the status alone for others.
            body = {"status": body["status"]}
        return _json(connection, status, body)

    def client_of(self, connection: ServerConnection, request: Request) -> str:
        """The client address of a request (the one place it is computed)."""
        peer = connection.remote_address
        return client_address.client_address(
            str(peer[0]) if peer else None, request.headers.get_all("X-Forwarded-For"),
            self.settings.trusted_networks)


def _json(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, orjson.dumps(body).decode() + "\n")
    return _with_type(response, "application/json")


def _with_type(response: Response, content_type: str) -> Response:
    # Headers is a multi-dict: assignment would add a second Content-Type.
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = content_type
    return response
