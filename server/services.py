"""The long-lived objects one server instance shares among its connections."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth import Passwords
from server.delivery import Delivery
from server.settings import Settings
from server.store import Store
from server.topology import Topology


@dataclass
class Services:
    settings: Settings
    store: Store
    delivery: Delivery
    passwords: Passwords
    topology: Topology
    instance_id: str
