"""Black-box behaviour of the ledger HTTP API and the `medledger verify` CLI.

Oracles: the `rfc8785` package for canonical bytes, ledgerlib's independent RFC 9162
verifier and signed-note code, identity's tokens (client_credentials) and PyJWT for forged ones.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import identitylib
import jwt
import ledgerlib
import pytest
import requests
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import (
    APPEND_SCOPE,
    HTTP_TIMEOUT,
    assert_problem,
    make_items,
    run_cli,
    unique_name,
    wait_for_size,
)

MAX_ENTRY = 65535


def _canon(entry) -> bytes:
    return rfc8785.dumps(entry)


# --------------------------------------------------------------------------- appending


def test_append_returns_indices_in_request_order(ledger, uniq):
    items = make_items(uniq("order"), 25)
    body = ledger.append(items, wait=True)
    indices = [e["index"] for e in body["entries"]]
    assert len(set(indices)) == len(items)
    assert indices == sorted(indices), f"indices not in request order: {indices}"
    cp = ledger.verify_checkpoint(body["checkpoint"])
    assert cp.size > indices[-1]
    for item, idx in zip(items, indices):
        assert ledger.entry_bytes(idx) == _canon(item["entry"]), idx


def test_append_without_wait_answers_indices_then_entries_appear(ledger, uniq):
    items = make_items(uniq("nowait"), 5)
    r = ledger.post_entries(items)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    entries = r.json()["entries"]
    assert [e["idempotencyKey"] for e in entries] == [i["idempotencyKey"] for i in items]
    indices = [e["index"] for e in entries]
    assert all(isinstance(i, int) and i >= 0 for i in indices) and len(set(indices)) == 5
    # A checkpoint covering them follows within a few checkpoint intervals.
    wait_for_size(ledger, max(indices) + 1)
    for item, idx in zip(items, indices):
        assert ledger.entry_bytes(idx) == _canon(item["entry"])


def test_wait_checkpoint_proofs_verify(ledger, uniq):
    items = make_items(uniq("waitproof"), 7)
    body = ledger.append(items, wait=True)
    cp = ledger.verify_checkpoint(body["checkpoint"])
    for item, e in zip(items, body["entries"]):
        proof = [ledgerlib.unb64(h) for h in e["inclusionProof"]]
        leaf = ledgerlib.leaf_hash(_canon(item["entry"]))
        assert ledgerlib.verify_inclusion(e["index"], cp.size, leaf, proof, cp.root), e
        # Negative control: the verifier notices a wrong leaf.
        assert not ledgerlib.verify_inclusion(e["index"], cp.size, ledgerlib.leaf_hash(b"{}"), proof, cp.root)


def test_repeated_idempotency_key_returns_first_index_and_does_not_grow(ledger, uniq):
    p = uniq("idem")
    first = {"idempotencyKey": f"{p}-k", "entry": {"kind": "e2e-test", "id": p, "v": 1}}
    i = ledger.append([first], wait=True)["entries"][0]["index"]
    before = ledger.append(make_items(f"{p}-before", 1), wait=True)["entries"][0]["index"]

    # The same key again, later: same index, and (with wait) a valid proof for it.
    again = ledger.append([first], wait=True)
    assert again["entries"][0]["index"] == i
    cp = ledger.verify_checkpoint(again["checkpoint"])
    proof = [ledgerlib.unb64(h) for h in again["entries"][0]["inclusionProof"]]
    assert ledgerlib.verify_inclusion(i, cp.size, ledgerlib.leaf_hash(_canon(first["entry"])), proof, cp.root)

    # Twice inside one request, around a fresh entry.
    fresh = make_items(f"{p}-fresh", 1)[0]
    mixed = ledger.append([first, fresh, first], wait=True)["entries"]
    assert mixed[0]["index"] == i and mixed[2]["index"] == i, mixed
    fresh_index = mixed[1]["index"]
    assert fresh_index > before

    # The same key with a different entry: either the first index (entry unchanged) or a problem.
    changed = {"idempotencyKey": first["idempotencyKey"], "entry": {"kind": "e2e-test", "id": p, "v": 2}}
    r = ledger.post_entries([changed], wait=True)
    if r.status_code == 200:
        assert r.json()["entries"][0]["index"] == i, r.text
    else:
        assert_problem(r, {409, 422}, "same key, different entry")

    after = ledger.append(make_items(f"{p}-after", 1), wait=True)["entries"][0]["index"]
    assert after > fresh_index
    assert after - before < 2000, "too much concurrent traffic to account for the tree growth"
    # Accounting: between `before` and `after` only the fresh entry (and other tests'
    # entries) were appended; neither version of `first` was stored again.
    for k in range(before + 1, after):
        got = ledger.entry_bytes(k)
        if k == fresh_index:
            assert got == _canon(fresh["entry"])
        else:
            assert got not in (_canon(first["entry"]), _canon(changed["entry"])), f"duplicate at {k}"
    assert ledger.entry_bytes(i) == _canon(first["entry"])


# Raw entry texts in non-canonical form; the ledger must store their RFC 8785 bytes.
RAW_ENTRIES = [
    # RFC 8785 section 3.2.2 sample input
    r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, 0.000001, 1e-7],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }""",
    # RFC 8785 section 3.2.3 sorting sample
    r"""{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }""",
    r"""{"z": [1e-7, 1e21, 1e20, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1.5E+2, 10.000],
        "a": {"y": [], "x": {}, "w": [{"b": 1, "a": 2}]},
        "ints": [0, -1, 9007199254740991, -9007199254740991, 100, 123456789012],
        "ctl": "\u0000\u0001\u001f\u007f\u0085\u2028\u2029 tab\t nl\n",
        "astral": "\ud834\udd1e", "empty": ""}""",
    '{"raw utf8": "Grüße, 世界, 😀", "é": 1, "e": 2, "\\u00e9x": 3}',
]


@pytest.mark.parametrize(
    "raw", RAW_ENTRIES, ids=["rfc8785-3.2.2", "rfc8785-3.2.3", "numbers-nesting-controls", "raw-utf8"]
)
def test_entry_is_stored_as_rfc8785_bytes(ledger, uniq, raw):
    key = uniq("jcs")
    body = '{"entries": [ {"entry": ' + raw + ', "idempotencyKey": ' + json.dumps(key) + "} ] }"
    r = ledger.post_raw("/entries?wait=checkpoint", body.encode())
    assert r.status_code == 200, r.text
    idx = r.json()["entries"][0]["index"]
    expected = rfc8785.dumps(json.loads(raw))
    got = ledger.get(f"/entries/{idx}")
    assert got.status_code == 200
    assert got.headers["Content-Type"].split(";")[0] == "application/json"
    assert got.content == expected
    # And the leaf is those bytes.
    cp = ledger.verify_checkpoint(r.json()["checkpoint"])
    proof = [ledgerlib.unb64(h) for h in r.json()["entries"][0]["inclusionProof"]]
    assert ledgerlib.verify_inclusion(idx, cp.size, ledgerlib.leaf_hash(expected), proof, cp.root)


def test_entry_size_limit_is_65535_canonical_bytes(ledger, uniq):
    p = uniq("big")
    entry = {"kind": "e2e-test", "id": p, "pad": ""}
    entry["pad"] = "a" * (MAX_ENTRY - len(_canon(entry)))
    assert len(_canon(entry)) == MAX_ENTRY
    body = ledger.append([{"idempotencyKey": p, "entry": entry}], wait=True)
    idx = body["entries"][0]["index"]
    assert ledger.entry_bytes(idx) == _canon(entry)

    over = dict(entry, pad=entry["pad"] + "a")
    assert len(_canon(over)) == MAX_ENTRY + 1
    assert_problem(
        ledger.post_entries([{"idempotencyKey": p + "-over", "entry": over}]), {400, 413}, "65536-byte entry"
    )
    # Control characters are 6 bytes each in canonical form (\u0001).
    esc = {"kind": "e2e-test", "c": "\u0001" * 11000}
    assert len(_canon(esc)) > MAX_ENTRY
    assert_problem(ledger.post_entries([{"idempotencyKey": p + "-esc", "entry": esc}]), {400, 413}, "escaped entry")
    # The limit is on canonical bytes, not on the request text: "\u0061" escapes (6 bytes
    # sent) canonicalise to "a" (1 byte), so this 65535-byte entry arrives as ~105 KB.
    small = {"kind": "e2e-test", "id": p + "-escaped", "pad": ""}
    n_pad = MAX_ENTRY - len(_canon(small))
    small["pad"] = "a" * n_pad
    text = json.dumps({"entries": [{"idempotencyKey": p + "-escaped", "entry": dict(small, pad="@PAD@")}]})
    text = text.replace('"@PAD@"', '"' + "\\u0061" * 8000 + "a" * (n_pad - 8000) + '"')
    assert len(text) > MAX_ENTRY + 40000 and json.loads(text)["entries"][0]["entry"] == small
    r = ledger.post_raw("/entries?wait=checkpoint", text.encode())
    assert r.status_code == 200, r.text[:300]
    assert ledger.entry_bytes(r.json()["entries"][0]["index"]) == _canon(small)


def test_batch_limit_is_1000_entries(ledger, uniq):
    p = uniq("batch")
    body = ledger.append(make_items(p, 1000))
    assert len({e["index"] for e in body["entries"]}) == 1000
    assert_problem(ledger.post_entries(make_items(p + "-over", 1001)), {400, 413}, "1001 entries")


# --------------------------------------------------------------------------- tlog-proof and the CLI


def _proof_for(ledger, uniq, n=3):
    items = make_items(uniq("tlogproof"), n)
    body = ledger.append(items, wait=True)
    return items, body


def test_tlog_proof_format_and_independent_verification(ledger, uniq):
    items, body = _proof_for(ledger, uniq)
    appended_cp = ledger.verify_checkpoint(body["checkpoint"])
    for item, e in zip(items, body["entries"]):
        r = ledger.get(f"/entries/{e['index']}/tlog-proof")
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.text
        assert text.startswith("c2sp.org/tlog-proof@v1\n")
        proof = ledgerlib.parse_tlog_proof(text)
        assert proof.index == e["index"]
        assert f"\nindex {e['index']}\n" in text
        assert ledgerlib.format_tlog_proof(proof) == text, "non-canonical tlog-proof layout"
        cp = ledger.verify_checkpoint(proof.checkpoint)
        assert cp.size >= appended_cp.size
        leaf = ledgerlib.leaf_hash(_canon(item["entry"]))
        assert ledgerlib.verify_inclusion(proof.index, cp.size, leaf, proof.hashes, cp.root)
        assert proof.hashes == ledger.inclusion(proof.index, cp.size)
        bad = [ledgerlib.flip_bit(proof.hashes[0])] + proof.hashes[1:] if proof.hashes else [leaf]
        assert not ledgerlib.verify_inclusion(proof.index, cp.size, leaf, bad, cp.root)
        # The proof's checkpoint extends the one the append returned.
        if cp.size > appended_cp.size:
            hashes = ledger.consistency(appended_cp.size, cp.size)
            assert ledgerlib.verify_consistency(appended_cp.size, cp.size, hashes, appended_cp.root, cp.root)
        else:
            assert cp.root == appended_cp.root


def _write(tmp_path, name, data: str | bytes):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


def _verify(medledger, entry_file, proof_file, vkey, *extra):
    return run_cli(medledger, "verify", "--entry", entry_file, "--proof", proof_file, "--vkey", vkey, *extra)


def _assert_verify_failed(p, what):
    err = p.stderr.decode()
    assert p.returncode != 0, f"{what}: verify succeeded: {p.stdout.decode()}"
    assert err.startswith("verify failed: "), f"{what}: stderr {err!r}"
    assert len(err.strip().splitlines()) == 1, f"{what}: want a one-line message, got {err!r}"


def test_cli_verify_accepts_genuine_and_rejects_tampering(ledger, uniq, medledger, tmp_path):
    items, body = _proof_for(ledger, uniq, 1)
    entry, idx = items[0]["entry"], body["entries"][0]["index"]
    proof_text = ledger.get(f"/entries/{idx}/tlog-proof").text
    proof = ledgerlib.parse_tlog_proof(proof_text)
    cp = ledger.verify_checkpoint(proof.checkpoint)

    # Any formatting of the entry is fine: the CLI canonicalises it.
    entry_file = _write(tmp_path, "entry.json", json.dumps(entry, indent=3, ensure_ascii=True))
    proof_file = _write(tmp_path, "entry.tlog-proof", proof_text)
    vkey_file = _write(tmp_path, "ledger.vkey", ledger.vkey + "\n")
    want = f"verified: entry {idx} is in {ledger.origin} at tree size {cp.size}"
    for vkey, extra in ((ledger.vkey, ()), ("@" + vkey_file, ()), (ledger.vkey, ("--origin", ledger.origin))):
        p = _verify(medledger, entry_file, proof_file, vkey, *extra)
        assert p.returncode == 0, p.stderr.decode()
        assert p.stdout.decode().strip() == want
    # Opaque `extra` data and signatures by unknown keys (witness cosignatures) are ignored
    # (c2sp.org/tlog-proof, c2sp.org/signed-note).
    witness, _ = ledgerlib.generate_note_key("witness.example")
    cosig = ledgerlib.sign_note(ledgerlib.split_note(proof.checkpoint)[0], "witness.example", witness).split("\n\n", 1)[
        1
    ]
    for name, text in (
        (
            "extra",
            ledgerlib.format_tlog_proof(ledgerlib.TlogProof(proof.index, proof.hashes, proof.checkpoint, b"opaque")),
        ),
        (
            "cosigned",
            ledgerlib.format_tlog_proof(ledgerlib.TlogProof(proof.index, proof.hashes, proof.checkpoint + cosig, None)),
        ),
    ):
        p = _verify(medledger, entry_file, _write(tmp_path, f"{name}.tlog-proof", text), ledger.vkey)
        assert p.returncode == 0, f"{name}: {p.stderr.decode()}"
        assert p.stdout.decode().strip() == want

    # Modified entry.
    _assert_verify_failed(
        _verify(
            medledger, _write(tmp_path, "e2.json", json.dumps(dict(entry, n=entry["n"] + 1))), proof_file, ledger.vkey
        ),
        "modified entry",
    )
    # Modified proof: a flipped bit in a hash, another index, a changed checkpoint root.
    variants = {}
    if proof.hashes:
        variants["hash bit"] = ledgerlib.format_tlog_proof(
            ledgerlib.TlogProof(
                proof.index,
                [ledgerlib.flip_bit(proof.hashes[0], 5, 3)] + proof.hashes[1:],
                proof.checkpoint,
                proof.extra,
            )
        )
        variants["dropped hash"] = ledgerlib.format_tlog_proof(
            ledgerlib.TlogProof(proof.index, proof.hashes[:-1], proof.checkpoint, proof.extra)
        )
    other = proof.index + 1 if proof.index + 1 < cp.size else proof.index - 1
    variants["index"] = ledgerlib.format_tlog_proof(
        ledgerlib.TlogProof(other, proof.hashes, proof.checkpoint, proof.extra)
    )
    cp_lines = proof.checkpoint.split("\n")
    cp_lines[2] = ("A" if cp_lines[2][0] != "A" else "B") + cp_lines[2][1:]
    variants["checkpoint root"] = ledgerlib.format_tlog_proof(
        ledgerlib.TlogProof(proof.index, proof.hashes, "\n".join(cp_lines), proof.extra)
    )
    variants["not a proof"] = "hello\n"
    for name, text in variants.items():
        _assert_verify_failed(
            _verify(medledger, entry_file, _write(tmp_path, "bad.tlog-proof", text), ledger.vkey),
            f"modified proof ({name})",
        )
    # Wrong key: same name, other key; and the right key with a wrong expected origin.
    _, wrong_vkey = ledgerlib.generate_note_key(ledger.origin)
    _assert_verify_failed(_verify(medledger, entry_file, proof_file, wrong_vkey), "wrong vkey")
    _assert_verify_failed(
        _verify(medledger, entry_file, proof_file, ledger.vkey, "--origin", "other.example/ledger"), "wrong origin"
    )


# --------------------------------------------------------------------------- tiles


class TileReader:
    def __init__(self, ledger, size: int):
        self.ledger, self.size, self.cache = ledger, size, {}

    def get(self, level, n: int) -> bytes:
        key = (level, n)
        if key not in self.cache:
            w = ledgerlib.tile_width(0 if level == "entries" else level, n, self.size)
            assert w > 0, (level, n, self.size)
            path = ledgerlib.tile_path(level, n, w)
            r = self.ledger.get(path)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"
            assert r.headers["Content-Type"].startswith("application/octet-stream"), (path, r.headers)
            if level == "entries":
                assert len(ledgerlib.parse_entry_bundle(r.content)) == w, path
            else:
                assert len(r.content) == 32 * w, (path, len(r.content))
            self.cache[key] = r.content
        return self.cache[key]

    def hashes(self, level: int, n: int) -> list[bytes]:
        return ledgerlib.split_hash_tile(self.get(level, n))

    def node(self, height: int, k: int) -> bytes:
        """Hash of the complete subtree of 2**height leaves starting at leaf k * 2**height."""
        level = height // ledgerlib.TILE_HEIGHT
        span = 1 << (height - level * ledgerlib.TILE_HEIGHT)  # nodes at tile level
        first = k * span
        nodes = []
        for j in range(first, first + span):
            tile, pos = divmod(j, ledgerlib.TILE_WIDTH)
            nodes.append(self.hashes(level, tile)[pos])
        return ledgerlib.mth(nodes)


def test_tiles_match_entries_and_checkpoint(ledger, uniq):
    items = make_items(uniq("tiles"), 300)
    body = ledger.append(items, wait=True)
    indices = [e["index"] for e in body["entries"]]
    cp = ledger.checkpoint()
    assert cp.size > max(indices) and cp.size >= 300
    tiles = TileReader(ledger, cp.size)

    # Level-0 hashes and entry bundles of our entries.
    for item, idx in zip(items, indices):
        tile, pos = divmod(idx, ledgerlib.TILE_WIDTH)
        data = _canon(item["entry"])
        assert tiles.hashes(0, tile)[pos] == ledgerlib.leaf_hash(data), idx
        assert ledgerlib.parse_entry_bundle(tiles.get("entries", tile))[pos] == data, idx
    # Every bundle entry we fetched hashes to the level-0 tile hash at its position.
    for tile in sorted({i // ledgerlib.TILE_WIDTH for i in indices}):
        bundle = ledgerlib.parse_entry_bundle(tiles.get("entries", tile))
        assert [ledgerlib.leaf_hash(d) for d in bundle] == tiles.hashes(0, tile)
        # A full level-0 tile's root is the level-1 hash above it.
        if len(bundle) == ledgerlib.TILE_WIDTH:
            assert ledgerlib.mth(tiles.hashes(0, tile)) == tiles.hashes(1, tile // 256)[tile % 256]

    # The checkpoint root recomputed from tiles (level 1 for complete 256-leaf subtrees,
    # level 0 for the rest).
    assert ledgerlib.root_from_subtrees(cp.size, tiles.node) == cp.root


def test_full_tiles_are_immutable(ledger, uniq):
    ledger.append(make_items(uniq("fill"), 1), wait=True)
    cp = ledger.checkpoint()
    if cp.size < 256:  # make sure tile 0 is full (the tile test normally did this already)
        ledger.append(make_items(uniq("fill"), 256 - cp.size), wait=True)
    for path in ("/tile/0/000", "/tile/entries/000"):
        r = ledger.get(path)
        assert r.status_code == 200, path
        assert "immutable" in r.headers.get("Cache-Control", ""), (path, r.headers)
    assert len(ledger.get("/tile/0/000").content) == 256 * 32


@pytest.mark.parametrize(
    "path",
    [
        "/tile/0/0", "/tile/0/00", "/tile/0/0000", "/tile/0/x000/000", "/tile/0/abc", "/tile/0/-01",
        "/tile/0/000.p/0", "/tile/0/000.p/256", "/tile/0/000.p/abc", "/tile/0/000.p/", "/tile/0/000.p/007x",
        "/tile/-1/000", "/tile/x/000", "/tile/99/000", "/tile/0/x999/x999/999", "/tile/entries/x999/x999/999",
        "/tile/entries/000.p/0", "/tile/entries/abc", "/tile/0", "/tile/", "/tile/data/000",
    ],
)  # fmt: skip
def test_bad_tile_paths(ledger, path):
    assert_problem(ledger.get(path), {400, 404}, path)


# --------------------------------------------------------------------------- auth


def _b64url(data: bytes) -> str:
    return ledgerlib.b64(data).rstrip("=").replace("+", "-").replace("/", "_")


def _post_one(ledger, key, token, n=0):
    return ledger.post_entries([{"idempotencyKey": key, "entry": {"kind": "e2e-test", "id": key, "n": n}}], token=token)


def test_append_requires_a_valid_identity_token(ledger, identity, users, stack, service_token, uniq):
    """The stack's ledger trusts only identity's JWKS: identity's tokens with the append scope
    pass, identity's tokens without it get 403, anything forged or altered gets 401. (Claim
    checks that need tokens identity would never issue — wrong audience, expired, ... — run
    against a ledger process trusting a Python key: test_ledger_process.py.)"""
    key = uniq("auth")
    sid_client = (stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"])
    narrowed = identitylib.token_set(identity.client_credentials(*sid_client, scope="medledger/audit.write"))
    assert narrowed.scopes == {"medledger/audit.write"}, narrowed.scope
    doctor = users.staff("doctor")
    header = identitylib.unverified_header(service_token)
    claims = identitylib.unverified_claims(service_token)
    assert APPEND_SCOPE in claims["scope"].split(), claims
    other_key = Ed25519PrivateKey.generate()
    public_x = identity.jwks()["keys"][0]["x"]
    hs256_header = identitylib.b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}).encode())
    hs256_input = f"{hs256_header}.{service_token.split('.')[1]}"
    hs256 = hmac.new(public_x.encode(), hs256_input.encode(), hashlib.sha256).digest()
    cases = {
        "no token": (None, 401),
        "garbage": ("not-a-jwt", 401),
        "alg none": (_b64url(b'{"alg":"none","typ":"JWT"}') + "." + service_token.split(".")[1] + ".", 401),
        "HS256 keyed with identity's public key": (f"{hs256_input}.{identitylib.b64url(hs256)}", 401),
        "signature altered": (identitylib.tamper_signature(service_token), 401),
        "payload altered (scope widened)": (
            identitylib.tamper_claims(narrowed.access_token, scope=f"medledger/audit.write {APPEND_SCOPE}"), 401
        ),
        "payload altered (sub)": (identitylib.tamper_claims(service_token, sub="e2e-someone-else"), 401),
        "unknown key": (jwt.encode({**claims, "jti": str(uuid.uuid4())}, other_key, algorithm="EdDSA",
                                   headers={"kid": f"e2e-unknown-{uuid.uuid4().hex[:8]}"}), 401),
        "identity's kid, another key": (
            jwt.encode({**claims, "jti": str(uuid.uuid4())}, other_key, algorithm="EdDSA", headers={"kid": header["kid"]}),
            401,
        ),
        "identity token without ledger.append": (narrowed.access_token, 403),
        "doctor's token": (users.token(doctor), 403),
        "admin's token": (users.admin.token, 403),
    }  # fmt: skip
    failures = []
    for name, (token, status) in cases.items():
        r = _post_one(ledger, key, token, n=1)
        try:
            assert_problem(r, status, name)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, "\n".join(failures)

    # Positive controls: a token narrowed to the append scope works, as does the full one.
    only_append = identitylib.token_set(identity.client_credentials(*sid_client, scope=APPEND_SCOPE, method="post"))
    r = _post_one(ledger, key, only_append.access_token, n=2)
    assert r.status_code == 200, r.text
    idx = r.json()["entries"][0]["index"]
    r2 = _post_one(ledger, uniq("auth-service"), service_token)
    assert r2.status_code == 200, r2.text
    # None of the rejected requests stored anything under the key (n=1 would win).
    wait_for_size(ledger, idx + 1)
    assert json.loads(ledger.entry_bytes(idx))["n"] == 2


def test_public_reads_need_no_token(ledger, uniq, stack):
    body = ledger.append(make_items(uniq("public"), 2), wait=True)
    idx = body["entries"][0]["index"]
    cp = ledger.verify_checkpoint(body["checkpoint"])
    anon = requests.Session()
    base = stack["LEDGER_URL"]
    tile = ledgerlib.tile_path(0, idx // 256, ledgerlib.tile_width(0, idx // 256, cp.size))
    bundle = ledgerlib.tile_path("entries", idx // 256, ledgerlib.tile_width(0, idx // 256, cp.size))
    for path in [
        "/checkpoint", f"/entries/{idx}", f"/entries/{idx}/tlog-proof",
        f"/proofs/inclusion?index={idx}&size={cp.size}", f"/proofs/consistency?from=1&to={cp.size}",
        tile, bundle, "/health/live", "/health/ready", "/metrics", "/openapi.yaml",
    ]:  # fmt: skip
        r = anon.get(base + path, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"


# --------------------------------------------------------------------------- bad input


def _items_json(entries: str) -> bytes:
    return ('{"entries": ' + entries + "}").encode()


BAD_POSTS = [
    ("malformed json", b'{"entries": [', {400}),
    ("not json", b"hello", {400}),
    ("empty body", b"", {400}),
    ("body is an array", b"[]", {400}),
    ("body is null", b"null", {400}),
    ("no entries field", b"{}", {400}),
    ("entries is an object", b'{"entries": {}}', {400}),
    ("entries is null", b'{"entries": null}', {400}),
    ("empty entries", _items_json("[]"), {400}),
    ("entry is an array", _items_json('[{"idempotencyKey": "KEY", "entry": [1, 2]}]'), {400}),
    ("entry is a string", _items_json('[{"idempotencyKey": "KEY", "entry": "x"}]'), {400}),
    ("entry is a number", _items_json('[{"idempotencyKey": "KEY", "entry": 1}]'), {400}),
    ("entry is null", _items_json('[{"idempotencyKey": "KEY", "entry": null}]'), {400}),
    ("entry missing", _items_json('[{"idempotencyKey": "KEY"}]'), {400}),
    ("idempotencyKey missing", _items_json('[{"entry": {"a": 1}}]'), {400}),
    ("idempotencyKey not a string", _items_json('[{"idempotencyKey": 5, "entry": {"a": 1}}]'), {400}),
    ("item not an object", _items_json('["KEY"]'), {400}),
    ("number overflows a double", _items_json('[{"idempotencyKey": "KEY", "entry": {"a": 1e400}}]'), {400}),
    ("invalid utf-8", b'{"entries": [{"idempotencyKey": "KEY", "entry": {"a": "\xff\xfe"}}]}', {400}),
    ("lone surrogate escape", _items_json('[{"idempotencyKey": "KEY", "entry": {"a": "\\ud800"}}]'), {400}),
    ("trailing garbage", _items_json('[{"idempotencyKey": "KEY", "entry": {"a": 1}}]') + b" x", {400}),
]


@pytest.mark.parametrize("name,body,allowed", BAD_POSTS, ids=[b[0] for b in BAD_POSTS])
def test_bad_append_requests(ledger, uniq, name, body, allowed):
    body = body.replace(b"KEY", uniq("bad").encode())
    assert_problem(ledger.post_raw("/entries", body), allowed, name)


@pytest.fixture(scope="module")
def tree_size(ledger):
    """Current tree size, after making sure the tree has at least two leaves."""
    ledger.append(make_items(unique_name("tree_size", "seed"), 2), wait=True)
    return ledger.checkpoint().size


BIG = 10**15
HUGE = "99999999999999999999999999"
BAD_READS = [
    "/entries/-1", "/entries/abc", "/entries/1.5", "/entries/0x10", f"/entries/{HUGE}", f"/entries/{BIG}", "/entries/%20",
    "/entries/-1/tlog-proof", "/entries/abc/tlog-proof", f"/entries/{BIG}/tlog-proof", f"/entries/{HUGE}/tlog-proof",
    "/proofs/inclusion?index=-1&size=1", "/proofs/inclusion?index=abc&size=1", "/proofs/inclusion?index=0",
    "/proofs/inclusion?size=1", "/proofs/inclusion", "/proofs/inclusion?index=0&size=0", "/proofs/inclusion?index=1&size=1",
    "/proofs/inclusion?index=0&size=-1", "/proofs/inclusion?index=0&size=abc", f"/proofs/inclusion?index=0&size={BIG}",
    f"/proofs/inclusion?index={HUGE}&size={HUGE}", "/proofs/inclusion?index=0&size=1.0",
    "/proofs/inclusion?leafHash=%21%21notbase64&size=1", "/proofs/inclusion?leafHash=AAAA&size=1",
    "/proofs/inclusion?leafHash=&size=1",
    "/proofs/consistency?from=2&to=1", "/proofs/consistency?from=0&to=1", "/proofs/consistency?from=-1&to=1",
    "/proofs/consistency?from=abc&to=1", "/proofs/consistency?from=1", "/proofs/consistency?to=1", "/proofs/consistency",
    f"/proofs/consistency?from=1&to={BIG}", f"/proofs/consistency?from={HUGE}&to={HUGE}", "/proofs/consistency?from=1&to=x",
    "/no/such/route",
]  # fmt: skip


@pytest.mark.parametrize("path", BAD_READS)
def test_bad_reads(ledger, tree_size, path):
    assert_problem(ledger.get(path), {400, 404}, path)


def test_consistency_from_the_first_leaf_and_to_the_same_size(ledger, tree_size):
    cp = ledger.checkpoint()
    # The tree of size 1 is its first leaf, so its root is the leaf hash of entry 0.
    root1 = ledgerlib.leaf_hash(ledger.entry_bytes(0))
    assert ledgerlib.verify_consistency(1, cp.size, ledger.consistency(1, cp.size), root1, cp.root)
    assert ledger.consistency(cp.size, cp.size) == []
    assert ledger.inclusion(0, 1) == []
    assert ledgerlib.verify_inclusion(0, cp.size, root1, ledger.inclusion(0, cp.size), cp.root)


def test_unknown_leaf_hash_is_404(ledger, tree_size):
    r = ledger.get("/proofs/inclusion", params={"leafHash": ledgerlib.b64(b"\x07" * 32), "size": tree_size})
    assert_problem(r, 404, "unknown leaf hash")


def test_beyond_tree_size_is_rejected(ledger, tree_size):
    cp = ledger.checkpoint()
    for path in (
        f"/entries/{cp.size + 10**6}",
        f"/proofs/inclusion?index=0&size={cp.size + 10**6}",
        f"/proofs/consistency?from=1&to={cp.size + 10**6}",
        f"/proofs/inclusion?index={cp.size}&size={cp.size}",
    ):
        assert_problem(ledger.get(path), {400, 404}, path)


# --------------------------------------------------------------------------- concurrency


def test_concurrent_appends_get_distinct_indices_and_never_fork(ledger, uniq, stack, service_token):
    n = 64
    p = uniq("conc")
    items = make_items(p, n)
    # Each request also carries one of four shared keys, so racing duplicates are exercised too.
    shared = make_items(p + "-shared", 4)
    barrier = threading.Barrier(n)
    seen_checkpoints: list[str] = []
    done = threading.Event()

    def poll():
        s = requests.Session()
        while not done.is_set():
            r = s.get(stack["LEDGER_URL"] + "/checkpoint", timeout=HTTP_TIMEOUT)
            if r.status_code == 200:
                seen_checkpoints.append(r.text)
            time.sleep(0.01)

    def worker(i):
        wait = i % 2 == 0
        barrier.wait(timeout=60)
        r = requests.post(
            stack["LEDGER_URL"] + ("/entries?wait=checkpoint" if wait else "/entries"),
            data=ledgerlib.compact_json({"entries": [items[i], shared[i % 4]]}),
            headers={"Authorization": f"Bearer {service_token}", "Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
        return r.status_code, r.text

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(worker, range(n)))
    finally:
        done.set()
        poller.join(timeout=HTTP_TIMEOUT)

    bad = [(i, s, t[:200]) for i, (s, t) in enumerate(results) if s != 200]
    assert not bad, bad
    bodies = [json.loads(t) for _, t in results]
    indices = [b["entries"][0]["index"] for b in bodies]
    assert len(set(indices)) == n, sorted(indices)
    shared_index: dict[int, set[int]] = {}
    for i, b in enumerate(bodies):
        assert b["entries"][1]["idempotencyKey"] == shared[i % 4]["idempotencyKey"]
        shared_index.setdefault(i % 4, set()).add(b["entries"][1]["index"])
    assert all(len(v) == 1 for v in shared_index.values()), f"a shared key got several indices: {shared_index}"
    assert not set(indices) & {next(iter(v)) for v in shared_index.values()}
    for j, v in shared_index.items():
        assert ledger.entry_bytes(next(iter(v))) == _canon(shared[j]["entry"])

    texts = list(seen_checkpoints)
    for i, b in enumerate(bodies):
        if "checkpoint" in b and i % 2 == 0:
            texts.append(b["checkpoint"])
            cp = ledger.verify_checkpoint(b["checkpoint"])
            for e, item in zip(b["entries"], (items[i], shared[i % 4])):
                proof = [ledgerlib.unb64(h) for h in e["inclusionProof"]]
                assert ledgerlib.verify_inclusion(
                    e["index"], cp.size, ledgerlib.leaf_hash(_canon(item["entry"])), proof, cp.root
                )
    final = wait_for_size(ledger, max(indices + [next(iter(v)) for v in shared_index.values()]) + 1)
    texts.append(final.text)
    for i, idx in enumerate(indices):
        assert ledger.entry_bytes(idx) == _canon(items[i]["entry"])

    # No fork: one root per size, and every checkpoint is consistent with every later one.
    by_size: dict[int, bytes] = {}
    for t in texts:
        cp = ledger.verify_checkpoint(t)
        assert by_size.setdefault(cp.size, cp.root) == cp.root, f"two roots for size {cp.size}"
    sizes = sorted(s for s in by_size if s > 0)
    assert len(sizes) >= 2
    pairs = [(a, b) for i, a in enumerate(sizes) for b in sizes[i + 1 :]]
    if len(pairs) > 400:  # consecutive pairs chain transitively; add all-to-final
        pairs = sorted(set(itertools.pairwise(sizes)) | {(a, sizes[-1]) for a in sizes[:-1]})
    for a, b in pairs:
        hashes = ledger.consistency(a, b)
        assert ledgerlib.verify_consistency(a, b, hashes, by_size[a], by_size[b]), (a, b)
