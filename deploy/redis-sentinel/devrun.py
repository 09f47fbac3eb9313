"""`make run`: the local HA set plus chat servers in the foreground.

A server that dies (kill one to watch clients move) is restarted.
Ctrl-C or SIGTERM stops the servers first (they drain and tell clients to
reconnect), then the set, Sentinels before nodes. The chat-server half
(start, wait, supervise, stop) takes the storage flags as a list, so
`make run-cluster` (deploy/redis-cluster/devrun.py) runs servers with it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .nodes import SetError, port_in_use, wait_for_port
from .sentinelset import LocalSet

REPO = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"


def _open_set(root: Path, redis_port: int) -> LocalSet:
    """The set in root: a fresh one, or the one a previous run left (data kept)."""
    if (root / "state.json").exists():
        local = LocalSet.load(root)
        if local.pids():
            raise SetError(f"a set already runs in {root}; stop it with "
                           f"`python -m deploy.redis_sentinel.redisset stop --dir {root}`")
        print(f"restarting the set in {root} (data kept; last known primary first)", flush=True)
        local.restart_all()
        return local
    local = LocalSet(root=root, base_port=redis_port)
    print(f"starting 3 Redis nodes and 3 Sentinels in {root}", flush=True)
    local.start()
    return local


def start_server(index: int, port: int, root: Path, ports: list[int],
                 store_args: list[str]) -> subprocess.Popen[bytes]:
    """Chat server `index` on `port`; store_args say where Redis is."""
    log = (root / f"server-{index}.log").open("ab")
    with log:
        # Own session: a Ctrl-C reaches only us, and we stop servers in order.
        return subprocess.Popen(
            [sys.executable, "-m", "server", "--host", HOST, "--port", str(port),
             *store_args, "--instance-id", f"dev-{index}",
             # The web page moves to the other servers when its own goes away.
             "--public-urls", ",".join(f"http://{HOST}:{p}" for p in ports)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise SetError(f"chat server on port {port} exited: {tail[0]} (see {log})")
        if not port_in_use(HOST, port):
            time.sleep(0.1)
            continue
        wait_for_port(HOST, port, timeout=1)
        return
    raise SetError(f"chat server on port {port} did not listen within 30s (see {log})")


def stop_servers(servers: list[subprocess.Popen[bytes]]) -> None:
    for proc in servers:
        if proc.poll() is None:
            proc.terminate()
    for proc in servers:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_python() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def supervise(procs: list[subprocess.Popen[bytes]], ports: list[int], root: Path,
              restart: Callable[[int], subprocess.Popen[bytes]]) -> int:
    """Restart a server that dies, so killing one to watch clients move is safe.

    A server that dies again within 10 s of its restart is crash-looping
    (bad config, Redis gone): then everything stops with its log's last line.
    """
    started = [time.monotonic()] * len(procs)
    while True:
        time.sleep(0.5)
        for i, proc in enumerate(procs):
            code = proc.poll()
            if code is None:
                continue
            log = root / f"server-{i}.log"
            if time.monotonic() - started[i] < 10:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                print(f"chat server on port {ports[i]} keeps exiting ({tail[0]}); "
                      f"stopping everything (see {log})", file=sys.stderr, flush=True)
                return 1
            print(f"chat server on port {ports[i]} exited ({code}); restarting it",
                  flush=True)
            procs[i] = restart(i)
            started[i] = time.monotonic()
            wait_listening(procs[i], ports[i], log)


def check_free(ports: list[int]) -> None:
    for port in ports:
        if port_in_use(HOST, port):
            raise SetError(f"port {port} is already in use (another `make run`?); "
                           "pick others with --port / --redis-port")


# What opening the Redis side yields: the servers' storage flags, lines about
# the Redis side for the banner, and how to stop it.
Opened = tuple[list[str], str, Callable[[], None]]


def run_foreground(root: Path, ports: list[int], open_store: Callable[[], Opened],
                   status_cli: str) -> int:
    """Open the Redis side, start a chat server per port, print the banner,
    supervise until Ctrl-C/SIGTERM; then stop the servers, then Redis."""
    check_free(ports)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stop_store: Callable[[], None] | None = None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store_args, about, stop_store = open_store()

        def restart(i: int) -> subprocess.Popen[bytes]:
            return start_server(i, ports[i], root, ports, store_args)

        procs.extend(restart(i) for i in range(len(ports)))
        for i, (proc, port) in enumerate(zip(procs, ports, strict=True)):
            wait_listening(proc, port, root / f"server-{i}.log")
        urls = "  ".join(f"ws://{HOST}:{p}/ws" for p in ports) or "(none started)"
        page = f"  web client:   open http://{HOST}:{ports[0]}/ in a browser\n" if ports else ""
        print(
            f"\nchat is up (pid {os.getpid()}).\n{about}"
            f"  servers       {urls}   logs in {root}/server-N.log\n"
            f"{page}"
            f"  connect:      {client_python()} -m client"
            + "".join(f" --url ws://{HOST}:{p}/ws" for p in ports) + "\n"
            f"  status:       {client_python()} -m {status_cli} status --dir {root}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        return supervise(procs, ports, root, restart)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        # Ignore a second Ctrl-C: half-stopped processes are worse than a wait.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_servers(procs)
        if stop_store is not None:
            stop_store()
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_dev(root: Path, *, server_port: int, redis_port: int, servers: int = 2) -> int:
    root = root.resolve()

    def open_store() -> Opened:
        local = _open_set(root, redis_port)
        primary = local.primary_address()
        about = (f"  Redis primary {primary[0]}:{primary[1]} (per Sentinel), data in {root}\n"
                 f"  Sentinels     {local.sentinel_arg} (master name {local.master_name!r})\n")
        flags = ["--sentinel", local.sentinel_arg, "--sentinel-master", local.master_name]
        return flags, about, local.stop

    ports = [server_port + i for i in range(servers)]
    return run_foreground(root, ports, open_store, "deploy.redis_sentinel.redisset")
