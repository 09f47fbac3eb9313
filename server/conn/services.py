"""The long-lived objects one server instance shares among its connections."""

from __future__ import annotations

from dataclasses import dataclass

from server.conn.auth import Passwords
from server.delivery.fanout import Delivery
from server.settings import Settings
from server.storage.snapshot import TopologyView
from server.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    delivery: Delivery
    passwords: Passwords
    topology: TopologyView
    instance_id: str
