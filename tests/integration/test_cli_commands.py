"""`python -m client` one-shot subcommands against real servers: register, send,
read (paged, followed, acked), users, delete, passwd, logout --everywhere, and
how errors are reported."""

from __future__ import annotations

import json

from tests.conftest import StartServer
from tests.integration.cli_runs import chat, follow, ok
from tests.procs import ServerProc, free_port
from tests.wsclient import Peer


def test_register_send_read_and_ack_round_trip(server: ServerProc) -> None:
    url = server.url
    assert ok(chat(url, "register", "alice")).strip() == "registered alice"
    ok(chat(url, "register", "bob"))
    sent = json.loads(ok(chat(url, "send", "alice", "bob", "hi bob", "--json")))
    assert sent["from"] == "alice" and sent["to"] == "bob" and sent["msg_id"]
    assert ok(chat(url, "login", "bob")).strip() == "bob: 1 unread"
    unacked = [json.loads(line) for line in ok(chat(url, "--json", "read", "bob")).splitlines()]
    assert [(m["from"], m["body"], m["msg_id"]) for m in unacked] == [
        ("alice", "hi bob", sent["msg_id"])
    ]
    shown = ok(chat(url, "read", "bob", "--ack")).strip()
    assert shown.endswith("] alice: hi bob") and shown.startswith("[")
    assert ok(chat(url, "read", "bob")) == ""
    assert json.loads(ok(chat(url, "login", "bob", "--json"))) == {"username": "bob", "unread": 0}


def test_errors_print_one_line_and_exit_with_distinct_codes(server: ServerProc) -> None:
    url = server.url
    ok(chat(url, "register", "alice"))
    cases = [
        (chat(url, "login", "alice", password="wrong-password"), 3, "bad_credentials"),
        (chat(url, "send", "alice", "nobody", "hi"), 4, "no_such_user"),
        (chat(url, "register", "alice"), 6, "username_taken"),
        (chat(url, "register", "Bad Name"), 2, "invalid_username"),
        (chat(f"ws://127.0.0.1:{free_port()}/ws", "login", "alice"), 5, "no server reachable"),
        (chat(url, "send", "alice"), 2, "required"),
    ]
    for result, code, text in cases:
        assert result.returncode == code, (result.args, result.stderr)
        assert text in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_json_errors_are_machine_readable(server: ServerProc) -> None:
    result = chat(server.url, "--json", "login", "ghost")
    assert result.returncode == 3
    assert json.loads(result.stderr)["error"] == "bad_credentials"


def test_users_lists_matching_names_when_logged_in_as_user(server: ServerProc) -> None:
    for name in ("alice", "albert", "bob"):
        ok(chat(server.url, "register", name))
    assert ok(chat(server.url, "users", "al*", "--user", "bob")).split() == ["albert", "alice"]
    listed = json.loads(ok(chat(server.url, "--json", "users", "--user", "bob")))
    assert listed == {"users": ["albert", "alice", "bob"]}


def test_delete_removes_the_account(server: ServerProc) -> None:
    ok(chat(server.url, "register", "alice"))
    assert ok(chat(server.url, "delete", "alice")).strip() == "deleted alice"
    assert chat(server.url, "login", "alice").returncode == 3


def test_read_follow_prints_a_live_message_and_stops_at_limit(
    two_servers: tuple[ServerProc, ServerProc],
) -> None:
    one, two = two_servers
    ok(chat(one.url, "register", "alice"))
    ok(chat(one.url, "register", "bob"))
    follower = follow(two.url, "bob", "--ack", "--limit", "1")
    try:
        ok(chat(one.url, "send", "alice", "bob", "live one"))
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert out.strip().endswith("alice: live one")
    assert ok(chat(one.url, "read", "bob")) == ""  # acked after printing


async def test_read_with_ack_pages_past_the_reply_byte_bound(
    redis_url: str, start_server: StartServer
) -> None:
    small = start_server("--max-reply-bytes", "65536", redis_url=redis_url)
    ok(chat(small.url, "register", "bob"))
    sender = await Peer.connect(small.url)
    await sender.register_login("alice")
    for i in range(8):  # ~24 KiB of JSON each: two fit a 64 KiB reply
        await sender.send_message("bob", f"{i}" + "\x01" * 4000)
    page = ok(chat(small.url, "--json", "read", "bob", "--limit", "8"))
    assert 1 <= len(page.splitlines()) < 8  # one page, bounded in bytes
    read = [json.loads(line) for line in
            ok(chat(small.url, "--json", "read", "bob", "--limit", "8", "--ack")).splitlines()]
    assert [m["body"][0] for m in read] == [str(i) for i in range(8)]
    assert ok(chat(small.url, "read", "bob")) == ""
