"""Benchmarks: `python -m bench` (or `make bench`); `python -m bench --smoke` for CI.

Our durable send path against a python-socketio peer and a raw-Redis limit,
all measured in one run on the same local HA set; see docs/benchmarks.md.
"""
