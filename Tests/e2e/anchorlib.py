"""Helpers for the anchoring tests: `$verify` calls, an independent recomputation of a
version's commitment and ledger entry (rfc8785 + hashlib.sha3_256, sharing no code with
records), direct SQL for the tamper tests, and stopping/starting one stack service."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import rfc8785
from e2e_support import repo_root
from recordslib import describe

VERIFY_WAIT = 15.0  # seconds a fresh version may take to be anchored (orientation: p99 ≤ 2 s)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def params(body: dict) -> dict[str, list]:
    """A FHIR Parameters as name -> list of values (the value[x] of each)."""
    assert body.get("resourceType") == "Parameters", body
    out: dict[str, list] = {}
    for p in body.get("parameter", []):
        values = [v for k, v in p.items() if k.startswith("value")]
        assert len(values) == 1, p
        out.setdefault(p["name"], []).append(values[0])
    return out


def verify(records, token: str, rtype: str, rid: str, vid: int | None = None):
    path = f"/{rtype}/{rid}" + (f"/_history/{vid}" if vid is not None else "") + "/$verify"
    return records.request("GET", path, token)


def wait_verified(records, token: str, rtype: str, rid: str, vid: int | None = None, timeout: float = VERIFY_WAIT) -> dict[str, list]:
    """Polls `$verify` until the version is anchored; fails on a mismatch or a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = verify(records, token, rtype, rid, vid)
        assert r.status_code == 200, describe(r)
        p = params(r.json())
        result = p["result"][0]
        assert result in ("pending", "verified"), f"{rtype}/{rid}/{vid}: {result} {p.get('issue')}"
        if result == "verified":
            return p
        assert time.monotonic() < deadline, f"{rtype}/{rid} version {vid} still pending after {timeout}s"
        time.sleep(0.1)


def commitment(salt: bytes, canonical: bytes) -> bytes:
    return hashlib.sha3_256(salt + canonical).digest()


def expected_entry(salt: bytes, canonical: bytes, version_ref: str, last_updated: str) -> bytes:
    """The ledger entry as the design guide defines it, in RFC 8785 form."""
    return rfc8785.dumps(
        {
            "v": 1,
            "commitment": b64(commitment(salt, canonical)),
            "ref": b64(hashlib.sha3_256(salt + version_ref.encode()).digest()),
            "time": last_updated,
        }
    )


def check_against_resource(p: dict[str, list], resource: dict | None, *, content: bytes | None = None,
                           version_ref: str, last_updated: str) -> None:  # fmt: skip
    """The commitment and entry in `$verify`'s answer, recomputed independently from what a
    client holds: the resource JSON as vread served it (RFC 8785), or a Binary's content, or
    nothing (a deletion commits to the empty string)."""
    salt = base64.b64decode(p["salt"][0])
    assert len(salt) == 32
    canonical = content if content is not None else (rfc8785.dumps(resource) if resource is not None else b"")
    assert base64.b64decode(p["commitment"][0]) == commitment(salt, canonical), f"{version_ref}: commitment differs"
    assert p["entry"][0].encode() == expected_entry(salt, canonical, version_ref, last_updated), f"{version_ref}: entry differs"


# -- direct database access, for the tamper tests


def psql() -> str:
    found = shutil.which("psql") or next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    assert found, "psql not found (deploy/local/pg installs PostgreSQL)"
    return found


def sql(database_url: str, statement: str) -> str:
    """Runs SQL as the stack's database owner (who can also bypass the append-only triggers,
    as an attacker with database access could)."""
    p = subprocess.run(
        [psql(), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", database_url],
        input=statement, capture_output=True, text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )  # fmt: skip
    assert p.returncode == 0, f"psql failed: {p.stderr}"
    return p.stdout.strip()


def tamper(database_url: str, statement: str) -> None:
    """Changes rows behind the API: triggers (append-only guards) off for this session only."""
    sql(database_url, f"SET session_replication_role = replica; {statement}")


# -- versions in the ledger (records' outbox against the ledger's leaves)


def anchored_counts(stack, ids: list[str]) -> tuple[int, int]:
    """(versions of these resources, of which anchored) in records' database."""
    id_list = ",".join(f"'{i}'" for i in ids)  # uuids made by records: safe to inline
    out = sql(
        stack["RECORDS_DATABASE_URL"],
        f"SELECT count(*), count(o.anchored_at) FROM resource_versions v JOIN ledger_outbox o ON o.seq = v.seq WHERE v.id IN ({id_list})",
    )
    total, anchored = out.split("|")
    return int(total), int(anchored)


def each_in_ledger_once(stack, ids: list[str], expected: int) -> None:
    """Every outbox entry of these resources is in the ledger exactly once, at its leaf index."""
    id_list = ",".join(f"'{i}'" for i in ids)
    rows = sql(
        stack["RECORDS_DATABASE_URL"],
        f"SELECT o.leaf_index, o.entry FROM resource_versions v JOIN ledger_outbox o ON o.seq = v.seq WHERE v.id IN ({id_list})",
    ).splitlines()
    assert len(rows) == expected
    indices = [int(r.split("|", 1)[0]) for r in rows]
    assert len(set(indices)) == expected, "two versions share a leaf"
    leaves = sql(
        stack["LEDGER_DATABASE_URL"],
        f"SELECT idx, convert_from(data, 'UTF8') FROM leaves WHERE idx IN ({','.join(map(str, indices))})",
    ).splitlines()
    by_index = dict(line.split("|", 1) for line in leaves)
    for r in rows:
        index, entry = r.split("|", 1)
        assert by_index.get(index) == entry, f"leaf {index} is not the version's entry"
    entries = [r.split("|", 1)[1].replace("'", "''") for r in rows]
    copies = sql(
        stack["LEDGER_DATABASE_URL"],
        "SELECT count(*) FROM leaves WHERE data IN (" + ",".join(f"convert_to('{e}', 'UTF8')" for e in entries) + ")",
    )
    assert int(copies) == expected, f"{copies} leaves for {expected} entries: some entry was appended twice"


# -- one service of the stack


def second_process(stack: dict[str, str], name: str, port: int, log_path: Path) -> subprocess.Popen:
    """Another process of a stack service, on `port`, with exactly the settings the stack started
    it with (deploy/local/stack saves them in pids/NAME.env): the same database and peers."""
    saved = (Path(stack["STACK_DIR"]) / "pids" / f"{name}.env").read_bytes().split(b"\0")
    bin_dir, variables = saved[0].decode(), [v.decode() for v in saved[1:] if v]
    env = dict(v.split("=", 1) for v in variables)
    env["HTTP_PORT"] = str(port)
    with open(log_path, "ab") as log:
        return subprocess.Popen([f"{bin_dir}/medledger-{name}"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stack_service(stack: dict[str, str], action: str, name: str) -> None:
    script = repo_root() / "deploy/local/stack"
    p = subprocess.run(
        [str(script), action, name], capture_output=True, text=True, timeout=120, env={**os.environ, "STACK_DIR": stack["STACK_DIR"]}
    )
    assert p.returncode == 0, f"stack {action} {name} failed:\n{p.stdout}\n{p.stderr}"
