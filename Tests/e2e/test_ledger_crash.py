"""Crash safety: SIGKILL a ledger process in the middle of a write load.

Issue: "Kill the ledger process during a batch: on restart every acknowledged entry is
present once and the next checkpoint is consistent with every earlier one."

The test starts its own ledger process (the stack's binary, on the stack ledger's database:
several ledger processes may share one database; it trusts only a Python-made token key,
see e2e_support.LocalIssuer) on a free 127.0.0.1 port, loads it with
writer threads, SIGKILLs it while requests are in flight and starts it again with the same
environment. Then it re-sends every key it ever sent and checks that

- every acknowledged key keeps its acknowledged index, and no index belongs to two keys;
- each of our entries is stored exactly once (entry bundles over the whole range written
  during the test), as the RFC 8785 bytes of what was sent (GET /entries/{i});
- every checkpoint seen before the kill, after the restart and from the stack's own ledger is
  signed by LEDGER_VKEY, has one root per size, never goes backwards across the restart, and
  is consistent with the checkpoint covering everything (RFC 9162 proofs checked by ledgerlib).

Oracles: the `rfc8785` package for canonical bytes, ledgerlib's RFC 9162 verifier and
signed-note code. Not an in-process test: nothing here shares code with the Swift service.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import rfc8785

import ledgerlib
from e2e_support import Ledger, ServiceProcess, ledger_process_env, safe_free_port, wait_for_size

WRITERS = 16
BATCH = 50
MAX_BATCHES_PER_WRITER = 400  # a bound only; the kill ends the load long before
LOAD_SECONDS = (1.0, 2.0)  # the kill comes at a random moment in this window ...
READY_TIMEOUT = 30
WRITE_TIMEOUT = 20  # per request during the load (a kill resets connections at once)
ACK_CAP = 6000  # ... or earlier, once this many entries are acknowledged
RESEND_BATCH = 500


def _canon(entry) -> bytes:
    return rfc8785.dumps(entry)


def _port_refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


@pytest.fixture
def extra_ledger(stack, local_issuer, tmp_path):
    """A second ledger process on the stack ledger's database, signing with the stack's log key
    and trusting tokens from the Python-made local_issuer; always killed at the end."""
    exe = Path(stack["MEDLEDGER_BIN"]) / "medledger-ledger"
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} is not an executable (MEDLEDGER_BIN in STACK_ENV)", pytrace=False)
    port = safe_free_port()
    env = ledger_process_env(stack, local_issuer, port)
    proc = ServiceProcess(
        exe, env, port, tmp_path / "extra-ledger.log", token=local_issuer.token(ttl=3600), ready_timeout=READY_TIMEOUT
    )
    yield proc
    status = proc.kill()
    print(f"extra ledger: {proc.starts} start(s), final exit status {status}")
    print(proc.tail(80))


class Load:
    """What the writers sent and what the ledger answered, shared between threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: dict[str, dict] = {}  # key -> entry, in sending order
        self.acked: dict[str, int] = {}  # key -> acknowledged index
        self.cut_off: list[str] = []  # requests that got no answer (exception)
        self.bad: list[str] = []  # HTTP answers other than 200 during the load
        self.proof_bodies: list[tuple[list[dict], dict]] = []  # wait=checkpoint answers
        self.in_flight = 0
        self.requests = 0


def _entry(key: str, t: int, b: int, i: int) -> dict:
    # Varied JSON so the stored bytes exercise RFC 8785: key order, numbers, escapes, non-ASCII.
    return {
        "kind": "e2e-crash",
        "id": key,
        "w": t,
        "b": b,
        "n": i,
        "ratio": (t * 1000 + b * 50 + i + 1) / 7,
        "nums": [1e21, 1e-7, -0.0, 100, 0.1 + 0.2],
        "text": "Grüße \u2028 😀 \"q\" \\ \t",
        "nested": {"z": [True, None, False], "a": {"y": i % 3, "x": "é"}},
    }


def _verify_inclusions(client: Ledger, items: list[dict], body: dict) -> ledgerlib.Checkpoint:
    cp = client.verify_checkpoint(body["checkpoint"])
    for item, e in zip(items, body["entries"]):
        proof = [ledgerlib.unb64(h) for h in e["inclusionProof"]]
        leaf = ledgerlib.leaf_hash(_canon(item["entry"]))
        assert ledgerlib.verify_inclusion(e["index"], cp.size, leaf, proof, cp.root), (
            f"inclusion proof for {item['idempotencyKey']} at {e['index']} does not verify against size {cp.size}"
        )
    return cp


def test_kill_ledger_during_batches_loses_nothing_acknowledged(stack, ledger, extra_ledger, uniq):
    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"[{time.monotonic() - t0:5.1f} s] {what}")

    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    prefix = uniq("crash")
    print(f"prefix {prefix}, random seed {seed}, extra ledger {extra_ledger.url}")

    extra_ledger.start()
    here = extra_ledger.client(stack)

    # A checkpoint before the load; every entry of the load comes after its size.
    seed_items = [{"idempotencyKey": f"{prefix}-seed", "entry": {"kind": "e2e-crash", "id": f"{prefix}-seed"}}]
    before = here.verify_checkpoint(here.append(seed_items, wait=True)["checkpoint"])
    earlier: list[tuple[str, str]] = [("before the load", before.text)]

    load = Load()
    stop = threading.Event()
    polled: list[tuple[str, str]] = []

    def writer(t: int) -> None:
        client = extra_ledger.client(stack)
        wait = t % 4 == 0  # a quarter of the writers also collect checkpoints and proofs
        for b in range(MAX_BATCHES_PER_WRITER):
            if stop.is_set():
                return
            items = []
            for i in range(BATCH):
                key = f"{prefix}-w{t}-b{b}-{i}"
                items.append({"idempotencyKey": key, "entry": _entry(key, t, b, i)})
            with load.lock:
                for it in items:
                    load.sent[it["idempotencyKey"]] = it["entry"]
                load.in_flight += 1
                load.requests += 1
            try:
                path = "/entries?wait=checkpoint" if wait else "/entries"
                r = client.post_raw(path, ledgerlib.compact_json({"entries": items}), timeout=WRITE_TIMEOUT)
                status, body = r.status_code, (r.json() if r.status_code == 200 else None)
            except (requests.RequestException, ValueError) as e:
                with load.lock:
                    load.cut_off.append(f"writer {t} batch {b}: {type(e).__name__}")
                return  # the process is gone
            finally:
                with load.lock:
                    load.in_flight -= 1
            if status != 200:
                with load.lock:
                    load.bad.append(f"writer {t} batch {b}: {status} {r.text[:300]}")
                return
            got = [(e["idempotencyKey"], e["index"]) for e in body["entries"]]
            if [k for k, _ in got] != [it["idempotencyKey"] for it in items]:
                with load.lock:
                    load.bad.append(f"writer {t} batch {b}: keys not answered in request order: {got[:3]}")
                return
            with load.lock:
                load.acked.update(got)
                if wait:
                    load.proof_bodies.append((items, body))

    def poller() -> None:
        sessions = {"extra": (requests.Session(), extra_ledger.url), "stack": (requests.Session(), stack["LEDGER_URL"])}
        while not stop.is_set():
            for name, (s, base) in sessions.items():
                try:
                    r = s.get(base + "/checkpoint", timeout=5)
                except requests.RequestException:
                    continue  # the extra one is being killed
                if r.status_code == 200:
                    polled.append((f"polled from {name}", r.text))
            time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(WRITERS)]
    threads.append(threading.Thread(target=poller, daemon=True))
    for th in threads:
        th.start()
    try:
        # The kill comes at a random moment in LOAD_SECONDS, or earlier once ACK_CAP entries are
        # acknowledged (bounds the checking work on a fast machine).
        kill_at = time.monotonic() + rng.uniform(*LOAD_SECONDS)
        while time.monotonic() < kill_at and len(load.acked) < ACK_CAP:
            time.sleep(0.005)
        # Kill while requests are in flight (with 16 writers there practically always are).
        deadline = time.monotonic() + 5
        while load.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        in_flight_at_kill = load.in_flight
        status = extra_ledger.kill()
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=WRITE_TIMEOUT + 5)
    assert not any(th.is_alive() for th in threads), "load threads did not finish"
    print(
        f"killed after {load.requests} requests: {len(load.acked)} entries acknowledged, "
        f"{len(load.sent) - len(load.acked)} not, {len(load.cut_off)} requests cut off, "
        f"{in_flight_at_kill} in flight at the kill"
    )

    # The process is really gone.
    assert status == -signal.SIGKILL, f"exit status {status}, expected -SIGKILL"
    assert _port_refuses(extra_ledger.port), f"something still listens on {extra_ledger.port}"

    assert not load.bad, "non-200 answers during the load:\n" + "\n".join(load.bad[:20])
    assert load.acked, "nothing was acknowledged before the kill: the load did not run"
    assert in_flight_at_kill > 0 and load.cut_off, "the kill did not interrupt any request"
    earlier += polled
    for items, body in load.proof_bodies:
        _verify_inclusions(here, items, body)
        earlier.append(("wait=checkpoint answer during the load", body["checkpoint"]))

    # Restart with the same environment.
    extra_ledger.start()
    here = extra_ledger.client(stack)
    r = here.get("/checkpoint")
    assert r.status_code == 200, f"GET /checkpoint after the restart: {r.status_code} {r.text[:300]}"
    restart_cp = here.verify_checkpoint(r.text)
    max_earlier = max(here.verify_checkpoint(t).size for _, t in earlier)
    assert restart_cp.size >= max_earlier, (
        f"the checkpoint went backwards across the restart: {restart_cp.size} < {max_earlier}"
    )
    earlier.append(("first after the restart", restart_cp.text))
    mark(f"restarted; checkpoint size {restart_cp.size}")

    # Re-send every key, acknowledged or not, with the same entries. One request at a time:
    # concurrent first requests to a freshly started ledger can get a spurious 503 "token keys
    # are unavailable" (TokenVerifier reentrancy while the JWKS loads), which is not what this
    # test is about.
    keys = list(load.sent)
    index_of: dict[str, int] = {}
    for start in range(0, len(keys), RESEND_BATCH):
        items = [{"idempotencyKey": k, "entry": load.sent[k]} for k in keys[start : start + RESEND_BATCH]]
        body = here.append(items, wait=True)
        for e in body["entries"]:
            index_of[e["idempotencyKey"]] = e["index"]
        _verify_inclusions(here, items, body)
        earlier.append(("wait=checkpoint answer to a re-send", body["checkpoint"]))
    assert set(index_of) == set(keys)
    unacked = [k for k in keys if k not in load.acked]
    committed_unacked = sum(1 for k in unacked if index_of[k] < restart_cp.size)
    print(f"{committed_unacked} of {len(unacked)} unacknowledged entries had been committed before the kill (lower bound)")
    mark("re-sent every key")

    moved = [(k, i, index_of[k]) for k, i in load.acked.items() if index_of[k] != i]
    assert not moved, (
        f"{len(moved)} acknowledged keys came back with another index (key, acknowledged, now): {moved[:10]}"
    )
    shared = {i: ks for i, ks in _group(index_of).items() if len(ks) > 1}
    assert not shared, f"indices shared by several keys: {dict(list(shared.items())[:10])}"
    assert min(index_of.values()) >= before.size, (min(index_of.values()), before.size)

    # A checkpoint covering everything.
    tail_items = [{"idempotencyKey": f"{prefix}-final", "entry": {"kind": "e2e-crash", "id": f"{prefix}-final"}}]
    final_body = here.append(tail_items, wait=True)
    final = _verify_inclusions(here, tail_items, final_body)
    assert final.size > max(index_of.values()), (final.size, max(index_of.values()))

    # GET /entries/{i}: the RFC 8785 bytes of what was sent, for every acknowledged key.
    local = threading.local()

    def fetch(key: str) -> tuple[str, int, int, bytes]:
        if not hasattr(local, "client"):
            local.client = extra_ledger.client(stack)
        r = local.client.get(f"/entries/{load.acked[key]}")
        return key, load.acked[key], r.status_code, r.content

    with ThreadPoolExecutor(max_workers=16) as pool:
        fetched = list(pool.map(fetch, list(load.acked)))
    wrong = [(k, i, s, c[:120]) for k, i, s, c in fetched if s != 200 or c != _canon(load.sent[k])]
    assert not wrong, f"{len(wrong)} acknowledged entries read back wrong (key, index, status, bytes): {wrong[:5]}"
    mark(f"read back {len(fetched)} acknowledged entries")

    # Present once: scan every entry written since `before` (entry bundles) for our entries.
    ours = {_canon(load.sent[k]): k for k in keys}
    assert len(ours) == len(keys)
    seen: dict[str, list[int]] = collections.defaultdict(list)
    first_tile, last_tile = before.size // ledgerlib.TILE_WIDTH, (final.size - 1) // ledgerlib.TILE_WIDTH

    def bundle(n: int) -> tuple[int, list[bytes]]:
        if not hasattr(local, "client"):
            local.client = extra_ledger.client(stack)
        path = ledgerlib.tile_path("entries", n, ledgerlib.tile_width(0, n, final.size))
        r = local.client.get(path)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"
        return n, ledgerlib.parse_entry_bundle(r.content)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for n, datas in pool.map(bundle, range(first_tile, last_tile + 1)):
            assert len(datas) == ledgerlib.tile_width(0, n, final.size), n
            for pos, data in enumerate(datas):
                if data in ours:
                    seen[ours[data]].append(n * ledgerlib.TILE_WIDTH + pos)
    missing = [k for k in keys if k not in seen]
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    misplaced = [(k, v[0], index_of[k]) for k, v in seen.items() if len(v) == 1 and v[0] != index_of[k]]
    assert not missing, f"{len(missing)} entries not in the tree: {missing[:10]}"
    assert not twice, f"{len(twice)} entries stored more than once: {dict(list(twice.items())[:10])}"
    assert not misplaced, f"entries at another index than answered (key, stored, answered): {misplaced[:10]}"
    mark(f"scanned entry bundles {first_tile}..{last_tile}")

    # Every earlier checkpoint: signed by the log key, one root per size, consistent with `final`.
    by_size: dict[int, tuple[bytes, str]] = {}
    for what, text in earlier:
        cp = here.verify_checkpoint(text)
        assert cp.size <= final.size, (what, cp.size, final.size)
        prev = by_size.setdefault(cp.size, (cp.root, what))
        assert prev[0] == cp.root, f"two roots for size {cp.size}: {prev[1]!r} and {what!r}"
    for size, (root, what) in sorted(by_size.items()):
        if size == final.size:
            assert root == final.root, f"{what}: root differs from the final checkpoint at size {size}"
            continue
        proof = here.consistency(size, final.size)
        assert ledgerlib.verify_consistency(size, final.size, proof, root, final.root), (
            f"{what} (size {size}) is not consistent with the final checkpoint (size {final.size})"
        )

    # The stack's own ledger serves the same tree.
    stack_cp = wait_for_size(ledger, final.size, timeout=10)
    if stack_cp.size == final.size:
        assert stack_cp.root == final.root, "the stack's ledger signed another root for the final size"
    else:
        proof = ledger.consistency(final.size, stack_cp.size)
        assert ledgerlib.verify_consistency(final.size, stack_cp.size, proof, final.root, stack_cp.root)
    proof = ledger.consistency(before.size, final.size)
    assert ledgerlib.verify_consistency(before.size, final.size, proof, before.root, final.root), (
        "the stack's ledger's consistency proof before -> final does not verify"
    )

    print(
        f"after the restart: {len(keys)} keys at distinct indices, {len(by_size)} earlier checkpoint sizes "
        f"{min(by_size)}..{max(by_size)} consistent with {final.size}; {time.monotonic() - t0:.1f} s"
    )


def _group(index_of: dict[str, int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = collections.defaultdict(list)
    for k, i in index_of.items():
        out[i].append(k)
    return out
