"""Every error code of PROTOCOL.md, end to end against a real server.

test_chat.py and test_accounts.py cover the codes that arise in the normal
flow (revoked tokens, deleted accounts); this file covers the rest, and
checks that a connection stays usable after every error reply.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.procs import ServerProc
from tests.wsclient import Peer

PASSWORD = "correct horse"


async def still_usable(peer: Peer) -> None:
    reply = await peer.request("resume", token="x")
    assert reply["error"] == "bad_token", reply


@pytest.mark.parametrize(("frame", "expected_id"), [
    (b'{"op": "fetch", "id": 1}', None),               # binary frame
    ("not json at all", None),
    ('{"op": "fetch", "id": 1', None),                  # truncated
    ("[1, 2, 3]", None),                                # not an object
    ('{"op": "fetch", "id": true}', None),              # id neither string nor integer
    ('{"op": "fetch", "id": 1.5}', None),
    ('{"op": "fetch"}', None),                          # no id
    ('{"id": 7}', 7),                                   # no op
    ('{"op": "teleport", "id": "t"}', "t"),             # unknown op
    ('{"op": "register", "id": 1, "username": "ann"}', 1),            # missing argument
    ('{"op": "register", "id": 1, "username": 5, "password": "p"}', 1),  # wrong type
    ('{"op": "fetch", "id": 1, "limit": 0}', 1),
    ('{"op": "fetch", "id": 1, "limit": 1001}', 1),
    ('{"op": "list_users", "id": 1, "limit": "10"}', 1),
    ('{"op": "send", "id": 1, "to": "bob", "body": "", "msg_id": "m"}', 1),
    ('{"op": "send", "id": 1, "to": "bob", "body": "x", "msg_id": "no spaces"}', 1),
    ('{"op": "ack", "id": 1, "seq": "yesterday"}', 1),
])
async def test_malformed_frames_are_bad_request_and_the_connection_stays_usable(
    server: ServerProc, frame: str | bytes, expected_id: Any
) -> None:
    peer = await Peer.connect(server.url)
    # Logged in: without a session these ops are `unauthenticated` (tested below).
    await peer.register_login("frames")
    await peer.send_raw(frame)
    reply = await peer.recv()
    assert reply["ok"] is False and reply["error"] == "bad_request", reply
    assert reply["id"] == expected_id and reply["detail"]
    await still_usable(peer)


@pytest.mark.parametrize(("op", "args"), [
    ("logout", {}), ("list_users", {}), ("fetch", {}), ("ack", {"seq": "1-0"}),
    ("send", {"to": "bob", "body": "hi", "msg_id": "m1"}),
    ("delete_account", {"password": PASSWORD}),
    # Arguments a session would reject as bad_request: the session comes first.
    ("ack", {"seq": "1"}), ("fetch", {"limit": 0}), ("list_users", {"limit": 0}),
    ("send", {"to": "x", "body": "", "msg_id": "m"}), ("ack", {}), ("delete_account", {}),
])
async def test_ops_before_login_are_unauthenticated(
    server: ServerProc, op: str, args: dict[str, Any]
) -> None:
    peer = await Peer.connect(server.url)
    assert (await peer.request(op, **args))["error"] == "unauthenticated"


@pytest.mark.parametrize("name", ["Alice", "", "a" * 33, "_lead", "sp ace", "ünï", "a}b"])
async def test_register_with_a_bad_name_is_invalid_username(server: ServerProc, name: str) -> None:
    peer = await Peer.connect(server.url)
    reply = await peer.request("register", username=name, password=PASSWORD)
    assert reply["error"] == "invalid_username", reply


@pytest.mark.parametrize("password", ["short", "x" * 129])
async def test_register_with_a_bad_password_is_invalid_password(
    server: ServerProc, password: str
) -> None:
    peer = await Peer.connect(server.url)
    reply = await peer.request("register", username="ann", password=password)
    assert reply["error"] == "invalid_password", reply


async def test_register_of_an_existing_name_is_username_taken(server: ServerProc) -> None:
    peer = await Peer.connect(server.url)
    await peer.ok("register", username="ann", password=PASSWORD)
    reply = await peer.request("register", username="ann", password="another pass")
    assert reply["error"] == "username_taken"


@pytest.mark.parametrize(("name", "password"), [
    ("ann", "wrong password"), ("nobody", PASSWORD), ("Not A Name", PASSWORD), ("ann", ""),
])
async def test_login_failures_are_bad_credentials_without_saying_which_part(
    server: ServerProc, name: str, password: str
) -> None:
    peer = await Peer.connect(server.url)
    await peer.ok("register", username="ann", password=PASSWORD)
    reply = await peer.request("login", username=name, password=password)
    assert reply["error"] == "bad_credentials"
    assert reply["detail"] == "wrong username or password"


@pytest.mark.parametrize("token", ["", "garbage", "ann." + "A" * 43, "x" * 300, "ANN." + "b" * 43])
async def test_forged_or_malformed_tokens_are_bad_token(server: ServerProc, token: str) -> None:
    peer = await Peer.connect(server.url)
    await peer.register_login("ann")
    other = await Peer.connect(server.url)
    assert (await other.request("resume", token=token))["error"] == "bad_token"


@pytest.mark.parametrize("to", ["nobody", "Not A Name", "x" * 100])
async def test_send_to_a_missing_user_is_no_such_user(server: ServerProc, to: str) -> None:
    peer = await Peer.connect(server.url)
    await peer.register_login("ann")
    reply = await peer.request("send", to=to, body="hi", msg_id="m1")
    assert reply["error"] == "no_such_user"


async def test_body_over_4096_characters_is_too_large_and_4096_is_fine(server: ServerProc) -> None:
    peer = await Peer.connect(server.url)
    await peer.register_login("ann")
    assert (await peer.request("send", to="ann", body="é" * 4097, msg_id="m1"))[
        "error"] == "too_large"
    await peer.send_message("ann", "é" * 4096)


async def test_frame_over_the_limit_closes_with_1009(server: ServerProc) -> None:
    peer = await Peer.connect(server.url)
    await peer.send_raw(json.dumps({"op": "fetch", "id": 1, "pad": "x" * 65_536}))
    assert await peer.closed_code() == 1009


async def test_frame_just_under_the_limit_is_answered(server: ServerProc) -> None:
    peer = await Peer.connect(server.url)
    head, tail = '{"op": "fetch", "id": 1, "pad": "', '"}'
    await peer.send_raw(head + "x" * (65_536 - len(head) - len(tail)) + tail)
    assert (await peer.recv())["error"] == "unauthenticated"


async def test_more_than_ten_failed_logins_are_rate_limited_on_every_instance(
    two_servers: tuple[ServerProc, ServerProc]
) -> None:
    one, two = two_servers
    setup = await Peer.connect(one.url)
    await setup.ok("register", username="ann", password=PASSWORD)
    await setup.ok("register", username="bob", password=PASSWORD)
    attacker = await Peer.connect(one.url)
    for _ in range(11):
        assert (await attacker.request("login", username="ann", password="guess guess"))[
            "error"] == "bad_credentials"
    assert (await attacker.request("login", username="ann", password="guess guess"))[
        "error"] == "rate_limited"
    elsewhere = await Peer.connect(two.url)
    # Even the right password waits out the window: a guess must not be confirmed.
    reply = await elsewhere.request("login", username="ann", password=PASSWORD)
    assert reply["error"] == "rate_limited", reply
    await elsewhere.ok("login", username="bob", password=PASSWORD)


async def test_failed_logins_over_many_names_from_one_address_are_rate_limited(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--login-max-failures-per-address", "5", redis_url=redis_url)
    peer = await Peer.connect(server.url)
    await peer.ok("register", username="ann", password=PASSWORD)
    for i in range(6):
        assert (await peer.request("login", username=f"user{i}", password="guess guess"))[
            "error"] == "bad_credentials"
    reply = await peer.request("login", username="ann", password=PASSWORD)
    assert reply["error"] == "rate_limited", reply


async def test_successful_logins_do_not_count_towards_the_throttle(
    redis_url: str, start_server: StartServer
) -> None:
    server = start_server("--login-max-failures", "2", "--login-max-failures-per-address", "2",
                          redis_url=redis_url)
    peer = await Peer.connect(server.url)
    await peer.ok("register", username="ann", password=PASSWORD)
    for _ in range(10):
        await peer.ok("login", username="ann", password=PASSWORD)
    assert (await peer.request("login", username="ann", password="guess guess"))[
        "error"] == "bad_credentials"
