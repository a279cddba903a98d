"""The ledger's checkpoints and proofs, checked by an independent verifier:
Go's golang.org/x/mod/sumdb/{note,tlog} (Tests/oracle/tlogcheck/main.go).

The test appends entries in Fibonacci-sized steps with ?wait=checkpoint, so checkpoints
exist at many tree sizes, gathers inclusion proofs (from the append responses, by index
and by leaf hash) and consistency proofs between every pair of collected checkpoints,
adds tampered variants that must be rejected, and hands everything to the Go program.
"""

from __future__ import annotations

import json
import re

import ledgerlib
import rfc8785
from e2e_support import make_items, run_tlogcheck

STEPS = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]  # 376 leaves in 12 checkpoints
PAD_LIMIT = 8192  # at most this many extra leaves to reach a power-of-two tree size
SUMMARY = re.compile(r"^ok: (\d+) checkpoints, (\d+) inclusion, (\d+) consistency, (\d+) tampered rejected$")


def _run_oracle(tmp_path, doc: dict) -> tuple[int, int, int, int]:
    path = tmp_path / "tlogcheck-input.json"
    path.write_text(json.dumps(doc, indent=1))
    p = run_tlogcheck(path)
    assert p.returncode == 0, f"tlogcheck exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-6000:]}"
    lines = p.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {p.stderr}"
    m = SUMMARY.match(lines[-1])
    assert m, f"unexpected summary {lines[-1]!r}"
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


def _tampered_checkpoints(cp_text: str, origin: str, vkey: str) -> list[dict]:
    """Variants of a genuine checkpoint note that must not verify."""
    body, sigs = ledgerlib.split_note(cp_text)
    lines = body.split("\n")
    out = []
    # One changed character in the size line (and, separately, in the root line).
    size = lines[1]
    lines_size = list(lines)
    lines_size[1] = size[:-1] + str((int(size[-1]) + 1) % 10)
    out.append(
        {
            "kind": "checkpoint",
            "name": "size digit changed",
            "note": "\n".join(lines_size) + "\n" + "\n".join(sigs) + "\n",
        }
    )
    root = lines[2]
    lines_root = list(lines)
    lines_root[2] = ("B" if root[0] != "B" else "C") + root[1:]
    out.append(
        {
            "kind": "checkpoint",
            "name": "root character changed",
            "note": "\n".join(lines_root) + "\n" + "\n".join(sigs) + "\n",
        }
    )
    # A character changed in the signature itself.
    sig_name, sig_b64 = sigs[0][len(ledgerlib.SIG_PREFIX) :].split(" ", 1)
    raw = ledgerlib.flip_bit(ledgerlib.unb64(sig_b64), byte=10)
    out.append(
        {
            "kind": "checkpoint",
            "name": "signature bit flipped",
            "note": body + "\n" + ledgerlib.SIG_PREFIX + sig_name + " " + ledgerlib.b64(raw) + "\n",
        }
    )
    # Same body signed by another key under the log's name: once with the other key's
    # own key hash (unknown signer), once claiming the log key's hash (bad signature).
    priv, _ = ledgerlib.generate_note_key(origin)
    out.append(
        {"kind": "checkpoint", "name": "signed by a different key", "note": ledgerlib.sign_note(body, origin, priv)}
    )
    log_key = ledgerlib.parse_vkey(vkey)
    out.append(
        {
            "kind": "checkpoint",
            "name": "different key claiming the log key hash",
            "note": ledgerlib.sign_note(body, origin, priv, key_hash=log_key.key_hash),
        }
    )
    # A forged checkpoint for a bigger tree, signed by the other key.
    forged = f"{origin}\n{int(size) + 1000}\n{root}\n"
    out.append(
        {
            "kind": "checkpoint",
            "name": "forged bigger tree",
            "note": ledgerlib.sign_note(forged, origin, priv, key_hash=log_key.key_hash),
        }
    )
    return out


def test_oracle_rejects_and_accepts_hand_made_log(tmp_path):
    """The oracle itself: a log built here (Python RFC 9162 Merkle code, Python-signed
    notes) must verify, and every tampered variant must be rejected. This guards the
    oracle against silently accepting everything."""
    origin = "example.test/oracle-selftest"
    priv, vkey = ledgerlib.generate_note_key(origin)
    data = [rfc8785.dumps({"i": i, "s": "x" * (i % 7)}) for i in range(70)]
    leaves = [ledgerlib.leaf_hash(d) for d in data]
    sizes = [1, 2, 3, 4, 7, 8, 9, 31, 32, 33, 64, 70]
    cps = []
    for s in sizes:
        body = f"{origin}\n{s}\n{ledgerlib.b64(ledgerlib.mth(leaves[:s]))}\n"
        cps.append(ledgerlib.sign_note(body, origin, priv))
    inclusion = [
        {"checkpoint": ci, "index": i, "leafData": ledgerlib.b64(data[i]),
         "hashes": [ledgerlib.b64(h) for h in ledgerlib.inclusion_path(i, leaves[:s])]}
        for ci, s in enumerate(sizes) for i in sorted({0, s // 2, s - 1})
    ]  # fmt: skip
    consistency = [
        {"from": a, "to": b, "hashes": [ledgerlib.b64(h) for h in ledgerlib.consistency_path(sizes[a], leaves[: sizes[b]])]}
        for a in range(len(sizes)) for b in range(a, len(sizes))
    ]  # fmt: skip
    tampered = _tampered_checkpoints(cps[-1], origin, vkey)
    tampered += _tampered_proofs(inclusion, consistency, sizes)
    doc = {"vkey": vkey, "origin": origin, "checkpoints": cps, "inclusion": inclusion,
           "consistency": consistency, "tampered": tampered}  # fmt: skip
    assert _run_oracle(tmp_path, doc) == (len(cps), len(inclusion), len(consistency), len(tampered))

    # And one genuine item marked as tampered must make the oracle fail.
    bad = dict(doc, tampered=[dict(inclusion[-1], kind="inclusion", name="actually genuine")])
    path = tmp_path / "must-fail.json"
    path.write_text(json.dumps(bad))
    p = run_tlogcheck(path)
    assert p.returncode == 1 and "ACCEPTED" in p.stderr, (p.returncode, p.stdout, p.stderr)


def _tampered_proofs(inclusion: list[dict], consistency: list[dict], sizes: list[int]) -> list[dict]:
    """Tampered inclusion/consistency variants of genuine cases (checkpoint indexes into `sizes`)."""
    out: list[dict] = []
    # Proofs with at least 3 hashes whose index is also in a checkpoint of another size.
    long_inc = [
        c for c in inclusion
        if len(c["hashes"]) >= 3 and any(s > c["index"] and s != sizes[c["checkpoint"]] for s in sizes)
    ]  # fmt: skip
    assert len(long_inc) >= 3, "need inclusion proofs with at least 3 hashes"
    for n, c in enumerate(long_inc[:: max(1, len(long_inc) // 4)][:4]):
        hs = c["hashes"]
        flipped = list(hs)
        k = n % len(hs)
        flipped[k] = ledgerlib.b64(ledgerlib.flip_bit(ledgerlib.unb64(hs[k]), byte=n, bit=n % 8))
        out.append(dict(c, kind="inclusion", name=f"bit flipped in hash {k}", hashes=flipped))
        size = sizes[c["checkpoint"]]
        other = c["index"] + 1 if c["index"] + 1 < size else c["index"] - 1
        out.append(dict(c, kind="inclusion", name="wrong index", index=other))
        out.append(dict(c, kind="inclusion", name="last hash dropped", hashes=hs[:-1]))
        out.append(dict(c, kind="inclusion", name="first hash dropped", hashes=hs[1:]))
        out.append(dict(c, kind="inclusion", name="extra hash appended", hashes=hs + [hs[0]]))
        out.append(dict(c, kind="inclusion", name="hashes reversed", hashes=hs[::-1]))
        leaf = ledgerlib.unb64(c["leafData"])
        out.append(
            dict(c, kind="inclusion", name="leaf data changed", leafData=ledgerlib.b64(leaf.replace(b"}", b" }", 1)))
        )
        # The same proof against another checkpoint that also contains the index.
        others = [i for i, s in enumerate(sizes) if s > c["index"] and s != size]
        out.append(dict(c, kind="inclusion", name="root of a different size", checkpoint=others[-1]))
    long_con = [c for c in consistency if len(c["hashes"]) >= 2]
    assert len(long_con) >= 3, "need consistency proofs with at least 2 hashes"
    for n, c in enumerate(long_con[:: max(1, len(long_con) // 4)][:4]):
        hs = c["hashes"]
        flipped = list(hs)
        k = n % len(hs)
        flipped[k] = ledgerlib.b64(ledgerlib.flip_bit(ledgerlib.unb64(hs[k]), byte=n + 3, bit=(n + 5) % 8))
        out.append(dict(c, kind="consistency", name=f"bit flipped in hash {k}", hashes=flipped))
        out.append(dict(c, kind="consistency", name="last hash dropped", hashes=hs[:-1]))
        out.append(dict(c, kind="consistency", name="extra hash appended", hashes=hs + [hs[-1]]))
        # Proof checked against a different (bigger or smaller) target checkpoint.
        wrong_to = [j for j, s in enumerate(sizes) if s > sizes[c["from"]] and s != sizes[c["to"]]]
        if wrong_to:
            out.append(dict(c, kind="consistency", name="wrong target root", to=wrong_to[0]))
        wrong_from = [i for i, s in enumerate(sizes) if s < sizes[c["to"]] and s != sizes[c["from"]]]
        if wrong_from:
            out.append(dict(c, kind="consistency", name="wrong source root", **{"from": wrong_from[0]}))
    # Direction swapped: a proof from the bigger tree to the smaller one.
    c = long_con[-1]
    out.append(dict(c, kind="consistency", name="from/to swapped", **{"from": c["to"], "to": c["from"]}))
    return out


def test_checkpoints_and_proofs_verify_with_go_tlog(ledger, uniq, tmp_path):
    prefix = uniq("fib")
    checkpoints: list[ledgerlib.Checkpoint] = []  # in collection order
    leaf_data: dict[int, bytes] = {}  # index -> RFC 8785 bytes of what this test sent
    inclusion: list[dict] = []
    cp_pos: dict[str, int] = {}

    def add_checkpoint(text: str) -> int:
        cp = ledger.verify_checkpoint(text)  # Python check first: clearer failure
        if text not in cp_pos:
            cp_pos[text] = len(checkpoints)
            checkpoints.append(cp)
        return cp_pos[text]

    # First grow the tree to a power of two (when that is cheap), so that the collected
    # sizes include 2**k, 2**k + 1, 2**k + 2, ...: the power-of-two special case of RFC 9162
    # consistency proofs then gets exercised whatever the ledger held before.
    r = ledger.get("/checkpoint")
    size = ledger.verify_checkpoint(r.text).size if r.status_code == 200 else 0
    target = 1 << size.bit_length()  # next power of two above the current size
    for chunk in range(10):
        if size >= target or target - size > PAD_LIMIT:
            break
        n = min(1000, target - size)
        body = ledger.append(make_items(f"{prefix}-pad{chunk}", n), wait=True)
        ci = add_checkpoint(body["checkpoint"])
        size = checkpoints[ci].size

    for step, n in enumerate(STEPS):
        items = make_items(f"{prefix}-s{step}", n, step=step)
        body = ledger.append(items, wait=True)
        ci = add_checkpoint(body["checkpoint"])
        size = checkpoints[ci].size
        indices = [e["index"] for e in body["entries"]]
        assert len(set(indices)) == n and max(indices) < size, (indices, size)
        for item, e in zip(items, body["entries"]):
            data = rfc8785.dumps(item["entry"])
            leaf_data[e["index"]] = data
            # Every proof that came with the append (they are against this checkpoint).
            inclusion.append({"checkpoint": ci, "index": e["index"], "leafData": ledgerlib.b64(data),
                              "hashes": e["inclusionProof"]})  # fmt: skip
    final_ci = add_checkpoint(ledger.get("/checkpoint").text)
    assert len(leaf_data) == sum(STEPS)

    # Inclusion proofs fetched by index, and by leaf hash, for a spread of our indices
    # at several checkpoint sizes.
    ours = sorted(leaf_data)
    spread = sorted({ours[int(k * (len(ours) - 1) / 12)] for k in range(13)})
    for ci in sorted({0, len(checkpoints) // 3, 2 * len(checkpoints) // 3, len(checkpoints) - 2, final_ci}):
        size = checkpoints[ci].size
        for idx in [i for i in spread if i < size]:
            hashes = ledger.inclusion(idx, size)
            inclusion.append({"checkpoint": ci, "index": idx, "leafData": ledgerlib.b64(leaf_data[idx]),
                              "hashes": [ledgerlib.b64(h) for h in hashes]})  # fmt: skip
        for idx in [i for i in spread if i < size][::3]:
            lh = ledgerlib.leaf_hash(leaf_data[idx])
            for encoded in (ledgerlib.b64(lh), ledgerlib.b64(lh).replace("+", "-").replace("/", "_")):
                r = ledger.get("/proofs/inclusion", params={"leafHash": encoded, "size": size})
                assert r.status_code == 200, (encoded, r.status_code, r.text)
                got = r.json()
                assert got["index"] == idx and got["size"] == size, got
                inclusion.append({"checkpoint": ci, "index": got["index"], "leafData": ledgerlib.b64(leaf_data[idx]),
                                  "hashes": got["hashes"]})  # fmt: skip

    # Consistency proofs between every ordered pair of distinct collected checkpoints.
    consistency = []
    for a in range(len(checkpoints)):
        for b in range(len(checkpoints)):
            sa, sb = checkpoints[a].size, checkpoints[b].size
            if 1 <= sa <= sb and a != b:
                hashes = ledger.consistency(sa, sb)
                consistency.append({"from": a, "to": b, "hashes": [ledgerlib.b64(h) for h in hashes]})
    assert len(consistency) >= len(STEPS) * (len(STEPS) - 1) // 2

    sizes = [cp.size for cp in checkpoints]
    tampered = _tampered_checkpoints(checkpoints[final_ci].text, ledger.origin, ledger.vkey)
    tampered += _tampered_proofs(inclusion, consistency, sizes)

    doc = {"vkey": ledger.vkey, "origin": ledger.origin, "checkpoints": [cp.text for cp in checkpoints],
           "inclusion": inclusion, "consistency": consistency, "tampered": tampered}  # fmt: skip
    counts = _run_oracle(tmp_path, doc)
    assert counts == (len(checkpoints), len(inclusion), len(consistency), len(tampered))
    assert len(checkpoints) >= len(STEPS)
