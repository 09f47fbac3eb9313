"""Stateless WebSocket chat server over Redis (see docs/architecture.md)."""
