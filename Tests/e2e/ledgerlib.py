"""Independent client-side helpers for the ledger black-box tests.

Nothing here is shared with the Swift service: the Merkle code follows RFC 9162
section 2.1 (RFC 6962 hashing: leaf = SHA-256(0x00 || data), node =
SHA-256(0x01 || left || right)), the note code follows c2sp.org/signed-note and
c2sp.org/tlog-checkpoint, the proof file follows c2sp.org/tlog-proof, and the tile
paths follow c2sp.org/tlog-tiles.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256
EMPTY_ROOT = hashlib.sha256(b"").digest()
SIG_PREFIX = "\u2014 "  # em dash + space


# --------------------------------------------------------------------------- base64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def flip_bit(data: bytes, byte: int = 0, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[byte % len(b)] ^= 1 << bit
    return bytes(b)


# --------------------------------------------------------------------------- RFC 9162 Merkle trees


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth(leaf_hashes: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 Merkle Tree Hash over already-hashed leaves."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def inclusion_path(index: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]), bottom-up."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_path(index, leaf_hashes[:k]) + [mth(leaf_hashes[k:])]
    return inclusion_path(index - k, leaf_hashes[k:]) + [mth(leaf_hashes[:k])]


def consistency_path(m: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n])."""
    n = len(leaf_hashes)
    if not 0 < m <= n:
        raise ValueError("bad sizes")
    if m == n:
        return []
    return _subproof(m, leaf_hashes, True)


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _split(n)
    if m <= k:
        return _subproof(m, d[:k], b) + [mth(d[k:])]
    return _subproof(m - k, d[k:], False) + [mth(d[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index < 0 or size <= 0 or index >= size:
        return False
    if any(len(h) != HASH_SIZE for h in [leaf, root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """RFC 9162 2.1.4.2 (plus the trivial size1 == size2 case: empty proof, equal roots)."""
    if size1 < 1 or size2 < size1:
        return False
    if any(len(h) != HASH_SIZE for h in [root1, root2, *proof]):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # exact power of two
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


def root_from_subtrees(size: int, full_subtree: Callable[[int, int], bytes]) -> bytes:
    """MTH of a tree of `size` leaves, asking full_subtree(level, index) for the hash of
    each maximal aligned complete subtree (2**level leaves starting at index*2**level)."""
    if size == 0:
        return EMPTY_ROOT

    def rec(lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            return full_subtree(level, lo >> level)
        k = _split(n)
        return node_hash(rec(lo, lo + k), rec(lo + k, hi))

    return rec(0, size)


# --------------------------------------------------------------------------- signed notes


@dataclass(frozen=True)
class NoteKey:
    name: str
    key_hash: bytes  # 4 bytes
    public: bytes  # 32 bytes Ed25519


def _key_hash(name: str, alg_and_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + alg_and_key).digest()[:4]


def parse_vkey(vkey: str) -> NoteKey:
    """c2sp.org/signed-note verifier key: name+hash8hex+base64(0x01 || pub)."""
    name, hash_hex, key_b64 = vkey.strip().split("+", 2)
    key = unb64(key_b64)
    if len(hash_hex) != 8 or key[:1] != b"\x01" or len(key) != 33:
        raise ValueError(f"not an Ed25519 verifier key: {vkey!r}")
    kh = binascii.unhexlify(hash_hex)
    if kh != _key_hash(name, key):
        raise ValueError("verifier key hash does not match")
    return NoteKey(name=name, key_hash=kh, public=key[1:])


def generate_note_key(name: str) -> tuple[Ed25519PrivateKey, str]:
    """A fresh Ed25519 note key: (private key, verifier key text)."""
    priv = Ed25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kh = _key_hash(name, b"\x01" + pub)
    key_b64 = b64(b"\x01" + pub)
    return priv, f"{name}+{kh.hex()}+{key_b64}"


def sign_note(text: str, name: str, priv: Ed25519PrivateKey, key_hash: bytes | None = None) -> str:
    """Sign note text (must end in newline). key_hash overrides the 4-byte key id,
    which lets a test forge a signature that claims to be from the log's key."""
    assert text.endswith("\n")
    pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kh = key_hash if key_hash is not None else _key_hash(name, b"\x01" + pub)
    sig = priv.sign(text.encode())
    return f"{text}\n{SIG_PREFIX}{name} {b64(kh + sig)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str  # the full signed note

    @property
    def body(self) -> str:
        return self.text[: self.text.rindex("\n\n") + 1]


def split_note(text: str) -> tuple[str, list[str]]:
    i = text.rfind("\n\n")
    if i < 0 or not text.endswith("\n"):
        raise ValueError("malformed note")
    body, sigs = text[: i + 1], text[i + 2 :]
    return body, sigs[:-1].split("\n")


def verify_checkpoint(text: str, vkey: str, origin: str) -> Checkpoint:
    """Verify a C2SP checkpoint note signed by vkey; raises ValueError on any problem."""
    key = parse_vkey(vkey)
    body, sig_lines = split_note(text)
    verified = False
    for line in sig_lines:
        if not line.startswith(SIG_PREFIX):
            raise ValueError(f"malformed signature line {line!r}")
        name, _, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        sig = unb64(sig_b64)
        if name == key.name and sig[:4] == key.key_hash:
            try:
                Ed25519PublicKey.from_public_bytes(key.public).verify(sig[4:], body.encode())
            except InvalidSignature:
                raise ValueError("invalid checkpoint signature") from None
            verified = True
    if not verified:
        raise ValueError("checkpoint has no signature by the log key")
    lines = body.split("\n")
    if len(lines) < 4:
        raise ValueError("checkpoint body too short")
    if lines[0] != origin:
        raise ValueError(f"checkpoint origin {lines[0]!r} != {origin!r}")
    if not lines[1].isdigit() or str(int(lines[1])) != lines[1]:
        raise ValueError(f"bad size line {lines[1]!r}")
    root = unb64(lines[2])
    if len(root) != HASH_SIZE or b64(root) != lines[2]:
        raise ValueError(f"bad root line {lines[2]!r}")
    return Checkpoint(origin=lines[0], size=int(lines[1]), root=root, text=text)


# --------------------------------------------------------------------------- tlog-proof


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]
    checkpoint: str
    extra: bytes | None


def parse_tlog_proof(text: str) -> TlogProof:
    """c2sp.org/tlog-proof@v1: header, optional `extra`, `index N`, hashes, blank line, checkpoint."""
    header = "c2sp.org/tlog-proof@v1\n"
    if not text.startswith(header):
        raise ValueError("missing c2sp.org/tlog-proof@v1 header")
    head, sep, checkpoint = text[len(header) :].partition("\n\n")
    if not sep:
        raise ValueError("no blank line before the checkpoint")
    lines = head.split("\n")
    extra = None
    if lines and lines[0].startswith("extra "):
        extra = unb64(lines.pop(0)[len("extra ") :])
    if not lines or not lines[0].startswith("index "):
        raise ValueError("missing index line")
    idx = lines.pop(0)[len("index ") :]
    if not idx.isdigit() or str(int(idx)) != idx:
        raise ValueError(f"bad index {idx!r}")
    hashes = []
    for line in lines:
        h = unb64(line)  # an empty or non-base64 line is an error
        if len(h) != HASH_SIZE:
            raise ValueError(f"bad hash line {line!r}")
        hashes.append(h)
    return TlogProof(index=int(idx), hashes=hashes, checkpoint=checkpoint, extra=extra)


def format_tlog_proof(p: TlogProof) -> str:
    out = "c2sp.org/tlog-proof@v1\n"
    if p.extra is not None:
        out += f"extra {b64(p.extra)}\n"
    out += f"index {p.index}\n"
    out += "".join(b64(h) + "\n" for h in p.hashes)
    return out + "\n" + p.checkpoint


# --------------------------------------------------------------------------- tiles


def tile_index_path(n: int) -> str:
    """c2sp.org/tlog-tiles index encoding: 1234067 -> x001/x234/067."""
    if n < 0:
        raise ValueError("negative tile index")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.insert(0, f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(parts)


def tile_path(level: int | str, n: int, width: int = TILE_WIDTH) -> str:
    """level is an int for hash tiles or "entries" for entry bundles."""
    p = f"/tile/{level}/{tile_index_path(n)}"
    if width != TILE_WIDTH:
        if not 0 < width < TILE_WIDTH:
            raise ValueError("bad width")
        p += f".p/{width}"
    return p


def tile_width(level: int, n: int, size: int) -> int:
    """Width of tile (level, n) in a tree of `size` leaves (0 = tile does not exist)."""
    hashes_at_level = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, hashes_at_level - n * TILE_WIDTH))


def split_hash_tile(data: bytes) -> list[bytes]:
    if len(data) % HASH_SIZE:
        raise ValueError(f"tile length {len(data)} is not a multiple of 32")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def parse_entry_bundle(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise ValueError("truncated length prefix")
        (n,) = struct.unpack(">H", data[i : i + 2])
        i += 2
        if i + n > len(data):
            raise ValueError("truncated entry")
        out.append(data[i : i + n])
        i += n
    return out


# --------------------------------------------------------------------------- misc


def random_hex(n: int = 6) -> str:
    return os.urandom(n).hex()


def compact_json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
