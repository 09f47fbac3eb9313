"""Every Redis key and channel name of the app.

Keys of one user carry the hash tag `{name}`, so everything a send, an ack
or a delete touches of that user lives in one Cluster slot. A merged script
call (data/script_calls.py: neighbouring sends or acks in one EVALSHA) carries
the keys of several users and so spans slots: fine on one primary; a Cluster
mode merges only calls of one slot (merge_calls' slot_of).
"""

from __future__ import annotations

PREFIX = "chat"

#: Sorted set (score 0) of every account name, for paged pattern listing.
USERS = f"{PREFIX}:users"

#: Hash "ip:port" -> the replica-priority to restore when that node's fence is
#: lifted (server/storage/fencer.py). Present only while a node is fenced.
FENCES = f"{PREFIX}:fences"

#: Counter the group committer INCRs so its WAIT covers every earlier write.
COMMIT = f"{PREFIX}:commit"


def commit_in(tag: str) -> str:
    """The same counter on a Cluster shard: `tag` puts it in a slot of that shard."""
    return f"{COMMIT}:{{{tag}}}"


def directory_pending_in(tag: str) -> str:
    """Names whose directory step is pending, of the accounts in one Cluster slot
    (`tag`: that slot; data/directory.py)."""
    return f"{PREFIX}:dir-pending:{{{tag}}}"


def instance_channel_in(instance_id: str, tag: str) -> str:
    """An instance's ping channel on one Cluster shard (`tag`: a slot of that shard)."""
    return f"{PREFIX}:instance:{{{tag}}}:{instance_id}"


def account(name: str) -> str:
    """Hash: pw (argon2 hash), created (ms), gen (random id of this incarnation),
    and the inbox counters send.lua and ack.lua keep exact (see below)."""
    return f"{PREFIX}:{{{name}}}:account"


#: Fields of the account hash counting what the inbox holds: messages, body
#: bytes (UTF-8), and messages from one sender (PENDING_FROM + sender name).
#: Absent counters mean "not counted yet": the next send counts the inbox.
INBOX_COUNT = "n"
INBOX_BYTES = "b"
PENDING_FROM = "p:"
#: Field of the account hash: the newest seq send.lua stored (kept when acks
#: empty the inbox), the `prev` of the next message. Only send.lua writes it,
#: together with the ledger: counters without it were kept by an older
#: version (no ledger) and are counted again.
INBOX_LAST = "l"


def inbox(name: str) -> str:
    """Stream of undelivered messages; entry id is the message's seq."""
    return f"{PREFIX}:{{{name}}}:inbox"


def ledger(name: str) -> str:
    """List of "SIZE SENDER" (body bytes, sender name), one per inbox entry in
    the inbox's order: what an ack needs to take removed entries off the
    counters without reading them back (kept by send.lua and ack.lua)."""
    return f"{PREFIX}:{{{name}}}:ledger"


def dedupe(name: str) -> str:
    """Hash sender:msg_id -> "ts seq" of messages this user received, each
    field expiring one dedupe window after the send (hash-field expiry)."""
    return f"{PREFIX}:{{{name}}}:dedupe"


def dedupe_generation(name: str, generation: int) -> str:
    """The same records without field expiry (Redis 7.0-7.2): one hash per
    window-long generation (ts // window), the whole key expiring at the end
    of the next generation."""
    return f"{PREFIX}:{{{name}}}:dedupe:{generation}"


def seen(name: str) -> str:
    """Legacy dedupe hash (before the dedupe window): read during one window
    after an upgrade, expired by the upgrade (server/data/dedupe.py)."""
    return f"{PREFIX}:{{{name}}}:seen"


def seen_expiry(name: str) -> str:
    """Legacy sorted set indexing `seen` by expiry; expired like `seen`."""
    return f"{PREFIX}:{{{name}}}:seen-exp"


#: SCAN pattern of the dedupe keys of older layouts: both legacy kinds
#: (`seen`, `seen-exp`) and the generation hashes (`dedupe:G`); it also
#: matches the field-expiry hashes (`dedupe`), which the scan skips.
OLDER_DEDUPE_MATCH = f"{PREFIX}:{{*}}:[sd]e[ed]*"


def tokens(name: str) -> str:
    """Hash sha256(token) -> expiry ms of this user's sessions."""
    return f"{PREFIX}:{{{name}}}:tokens"


def revoked(name: str) -> str:
    """Hash sha256(token) -> "reason expiry_ms" of this user's revoked tokens.

    Kept for the token's remaining life, so the sweep can tell a session
    whose revocation note pub/sub lost why it ended.
    """
    return f"{PREFIX}:{{{name}}}:revoked"


def login_failures_of(name: str) -> str:
    """Counter of failed logins for one name from every address together."""
    return f"{PREFIX}:{{{name}}}:login-fail-all"


def login_failures(name: str, address: str) -> str:
    """Counter of failed logins for one name from one client address."""
    return f"{PREFIX}:{{{name}}}:login-fail:{address}"


#: Prefix of the per-address failed-login counters.
LOGIN_FAILURES_FROM = f"{PREFIX}:login-fail-addr:"


def login_failures_from(address: str) -> str:
    """Counter of failed logins from one client address, whatever the name."""
    return f"{LOGIN_FAILURES_FROM}{{{address}}}"


def channel(name: str) -> str:
    """Pub/sub channel carrying new messages and account events of a user."""
    return f"{PREFIX}:{{{name}}}:live"


def instance_channel(instance_id: str) -> str:
    """Pub/sub channel an instance sends itself pings on, to prove its listener alive."""
    return f"{PREFIX}:instance:{instance_id}"


def health_marker(instance_id: str) -> str:
    """String: the time (ms) of an instance's latest health probe write (short TTL)."""
    return f"{PREFIX}:health:{instance_id}"


def health_marker_in(instance_id: str, tag: str) -> str:
    """The same on one Cluster shard (`tag`: a slot of that shard)."""
    return f"{PREFIX}:health:{{{tag}}}:{instance_id}"


#: The kinds of per-user key, by the suffix after `chat:{name}:`.
USER_KINDS = ("account", "inbox", "ledger", "dedupe", "seen", "seen-exp", "tokens", "revoked",
              "login-fail", "login-fail-all")


def owner_of(key: str) -> tuple[str, str] | None:
    """(name, kind) of a per-user key (kind one of USER_KINDS), else None."""
    head = f"{PREFIX}:{{"
    if not key.startswith(head):
        return None
    # Names never contain "}" (arguments.USERNAME_RE), so the first one closes the tag.
    name, sep, rest = key[len(head):].partition("}:")
    kind = rest.partition(":")[0]
    if not sep or kind not in USER_KINDS:
        return None
    return name, kind
