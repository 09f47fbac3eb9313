"""server/conn/auth.py: argon2id passwords, random tokens naming their user, token hashes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from argon2 import PasswordHasher

from server.conn import auth
from server.conn.auth import Passwords, new_token, split_token, token_hash
from server.conn.hashing import HashSlots

CHEAP = {"time_cost": 1, "memory_kib": 8, "parallelism": 1}


def cheap() -> Passwords:
    return Passwords(**CHEAP, slots=HashSlots(workers=1, max_queue=4, max_per_address=4))


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return cheap()


async def test_hash_is_argon2id_with_the_configured_parameters(passwords: Passwords) -> None:
    hashed = await passwords.hash("correct horse", address="a")
    assert hashed.startswith("$argon2id$")
    assert "m=8,t=1,p=1" in hashed
    assert "correct horse" not in hashed


async def test_same_password_hashes_differently_each_time(passwords: Passwords) -> None:
    first = await passwords.hash("correct horse", address="a")
    assert first != await passwords.hash("correct horse", address="a")


async def test_right_password_verifies(passwords: Passwords) -> None:
    hashed = await passwords.hash("correct horse ☃", address="a")
    assert await passwords.verify(hashed, "correct horse ☃", address="a") is True


async def test_wrong_password_does_not_verify(passwords: Passwords) -> None:
    hashed = await passwords.hash("correct horse", address="a")
    assert await passwords.verify(hashed, "correct horsE", address="a") is False
    assert await passwords.verify(hashed, "", address="a") is False


async def test_malformed_stored_hash_does_not_verify(passwords: Passwords) -> None:
    assert await passwords.verify("not-an-argon2-hash", "correct horse", address="a") is False
    assert await passwords.verify("$argon2id$v=19$m=8,t=1,p=1$bad$bad", "x", address="a") is False


async def test_unknown_user_verifies_false(passwords: Passwords) -> None:
    assert await passwords.verify(None, "correct horse", address="a") is False
    assert await passwords.verify("", "correct horse", address="a") is False


class SpyHasher:
    """Records the hashes verify() is asked about, then really verifies."""

    def __init__(self, real: PasswordHasher) -> None:
        self.real = real
        self.verified: list[str | bytes] = []

    def verify(self, hashed: str | bytes, password: str | bytes) -> bool:
        self.verified.append(hashed)
        return self.real.verify(hashed, password)


async def test_unknown_user_costs_a_real_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    pw = cheap()
    spy = SpyHasher(pw._hasher)
    monkeypatch.setattr(pw, "_hasher", spy)
    assert await pw.verify(None, "correct horse", address="a") is False
    assert spy.verified == [pw._dummy]


async def test_unknown_user_is_false_even_if_the_password_matches_the_dummy() -> None:
    pw = cheap()
    pw._dummy = await pw.hash("guessable", address="a")
    assert await pw.verify(None, "guessable", address="a") is False


def test_token_names_its_user() -> None:
    token = new_token("alice.b")
    assert token.startswith("alice.b.")


def test_token_secret_has_at_least_128_random_bits() -> None:
    secret = new_token("alice").rpartition(".")[2]
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    assert len(raw) * 8 >= 128
    assert auth.TOKEN_BYTES * 8 >= 128


def test_tokens_are_unique_and_url_safe() -> None:
    tokens = {new_token("a") for _ in range(2000)}
    assert len(tokens) == 2000
    alphabet = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    assert all(set(t) <= alphabet for t in tokens)


def test_token_secrets_use_every_bit_position() -> None:
    # A constant or low-entropy source would leave bits fixed across tokens.
    raws = [base64.urlsafe_b64decode(new_token("a")[2:] + "=") for _ in range(200)]
    ored = anded = int.from_bytes(raws[0])
    for raw in raws[1:]:
        ored |= int.from_bytes(raw)
        anded &= int.from_bytes(raw)
    assert ored == 2 ** (8 * auth.TOKEN_BYTES) - 1
    assert anded == 0


def test_split_token_gives_the_user_and_the_whole_token() -> None:
    token = new_token("bob.smith")
    assert split_token(token) == ("bob.smith", token)


@pytest.mark.parametrize("token", [
    "", "no-dot-at-all" * 5, "." + "s" * 43, "alice." + "s" * 39, "alice." + "s" * 200,
    "alice.",
])
def test_split_token_refuses_tokens_of_another_shape(token: str) -> None:
    assert split_token(token) is None


def test_split_token_accepts_a_40_character_secret() -> None:
    assert split_token("alice." + "s" * 40) == ("alice", "alice." + "s" * 40)


def test_token_hash_is_the_sha256_hex_of_the_token() -> None:
    token = new_token("alice")
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(token_hash(token)) == 64
    assert token_hash(token) == token_hash(token)
    assert token_hash(token) != token_hash(new_token("alice"))
