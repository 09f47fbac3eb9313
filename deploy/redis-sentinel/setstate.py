"""ROOT/state.json: what a LocalSet started, so another process can manage it.

It records ports, pids and folders, never the password: that stays in
ROOT/password (mode 0600) next to the config files that hold it anyway.
Which node was primary last is read from the Sentinels' own config files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .nodes import RedisNode, SentinelNode, SetError

if TYPE_CHECKING:
    from .sentinelset import LocalSet

VERSION = 1


def _proc_entry(proc: RedisNode | SentinelNode) -> dict[str, Any]:
    return {"host": proc.host, "port": proc.port, "dir": str(proc.datadir),
            "pid": proc.pid if proc.alive() else None}


def save(local: LocalSet) -> None:
    state = {
        "version": VERSION,
        "config": {
            "master_name": local.master_name,
            "base_port": local.base_port,
            "down_after_ms": local.down_after_ms,
            "failover_timeout_ms": local.failover_timeout_ms,
            "host": local.host,
            "info_period_ms": local.info_period_ms,
        },
        "nodes": [_proc_entry(n) for n in local.nodes],
        "sentinels": [_proc_entry(s) for s in local.sentinels],
    }
    local.root.mkdir(parents=True, exist_ok=True)
    tmp = local.state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, local.state_path)  # readers never see half a file


def load(cls: type[LocalSet], root: Path) -> LocalSet:
    path = root / "state.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise SetError(f"no set under {root} (no state.json); start one first") from None
    except (OSError, ValueError) as exc:
        raise SetError(f"cannot read {path}: {exc}") from None
    if state.get("version") != VERSION:
        raise SetError(f"{path} has an unknown version {state.get('version')!r}")
    config = state["config"]
    pw_path = root / "password"
    password = pw_path.read_text().strip() if pw_path.exists() else None
    # base_port=0 only numbers the throw-away ports; the real ones come next.
    local = cls(
        root=root, base_port=0, replicas=len(state["nodes"]) - 1,
        sentinels=len(state["sentinels"]), master_name=config["master_name"],
        password=password, down_after_ms=config["down_after_ms"],
        failover_timeout_ms=config["failover_timeout_ms"], host=config["host"],
        info_period_ms=config["info_period_ms"],
    )
    local.base_port = config["base_port"]
    local.nodes = [
        RedisNode(datadir=Path(e["dir"]), host=e["host"], port=e["port"], password=password)
        for e in state["nodes"]
    ]
    local.sentinels = [
        SentinelNode(datadir=Path(e["dir"]), host=e["host"], port=e["port"], password=password)
        for e in state["sentinels"]
    ]
    for proc, entry in zip((*local.nodes, *local.sentinels),
                           (*state["nodes"], *state["sentinels"]), strict=True):
        proc.pid = entry["pid"]
    return local


def adopt(local: LocalSet) -> None:
    """Take over processes another process recorded for this set: a node the
    CLI restarted or added while `make run` holds the set, so that the
    holder's stop() stops those too. Our own live processes stay as they are."""
    try:
        state = json.loads(local.state_path.read_text())
    except (OSError, ValueError):
        return
    for entry in state.get("nodes", [])[len(local.nodes):]:
        local.nodes.append(RedisNode(datadir=Path(entry["dir"]), host=entry["host"],
                                     port=entry["port"], password=local.password))
    for procs, entries in ((local.nodes, state.get("nodes", [])),
                           (local.sentinels, state.get("sentinels", []))):
        for proc, entry in zip(procs, entries, strict=False):
            pid = entry.get("pid")
            if pid and pid != proc.pid and not proc.alive():
                proc.pid = pid
                proc.proc = None


def last_known_primary(local: LocalSet) -> tuple[str, int]:
    """The primary in the Sentinel config file with the highest
    config-epoch. Read from disk, because the Sentinels may be dead."""
    best: tuple[int, tuple[str, int]] | None = None
    for sentinel in local.sentinels:
        epoch, address = 0, None
        if not sentinel.conf_path.exists():
            continue
        for line in sentinel.conf_path.read_text().splitlines():
            words = line.split()
            if words[:3] == ["sentinel", "monitor", local.master_name]:
                address = (words[3], int(words[4]))
            elif words[:3] == ["sentinel", "config-epoch", local.master_name]:
                epoch = int(words[3])
        if address is not None and (best is None or epoch > best[0]):
            best = (epoch, address)
    if best is None:
        raise SetError(f"no Sentinel config under {local.root} names a primary")
    return best[1]
