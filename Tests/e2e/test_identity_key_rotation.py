"""Signing key rotation as an operator does it: `medledger-identity rotate-keys` against the
identity database while the stack runs. The running identity lists the new key within
SIGNING_KEY_REFRESH_MS (500 ms on the test stack) and signs with it after twice that, the JWKS lists the new key first and the
previous one after it, and a verifying service (the stack's ledger, which refetches the JWKS
when a token names an unknown kid, at most once per 10 s) accepts both new tokens and tokens
signed before the rotation.

Robust to ordering: nothing assumes how many rotations happened before; the test only compares
the kids it saw before its own rotation with those after. It rotates exactly once, so tokens
cached by other tests (signed with what becomes the previous key) stay valid.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import identitylib as idl
import pytest
from e2e_support import forget_service_tokens, make_items, stack_secret

ROTATE_TIMEOUT = 120  # the command applies migrations first
SIGNING_WAIT = 10  # seconds for identity to sign with the new key (SIGNING_KEY_REFRESH_MS=500)
LEDGER_WAIT = 30  # seconds for the ledger to refetch the JWKS (at most once per 10 s)


def rotate_keys(stack) -> str:
    """Run `medledger-identity rotate-keys`; returns the new kid it prints."""
    exe = Path(stack["MEDLEDGER_BIN"]) / "medledger-identity"
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} is not an executable (MEDLEDGER_BIN in STACK_ENV)", pytrace=False)
    if not stack.get("IDENTITY_DATABASE_URL"):
        pytest.fail("STACK_ENV lacks IDENTITY_DATABASE_URL", pytrace=False)
    kek = stack_secret(stack, "IDENTITY_KEK")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": stack["IDENTITY_DATABASE_URL"],
        "IDENTITY_KEK": kek,
        "MEDLEDGER_ENV": "development",
        "LOG_FORMAT": "text",
    }
    p = subprocess.run([str(exe), "rotate-keys"], env=env, capture_output=True, text=True, timeout=ROTATE_TIMEOUT)
    out = f"exit {p.returncode}\nstdout:\n{p.stdout[-2000:]}\nstderr:\n{p.stderr[-2000:]}"
    assert p.returncode == 0, f"rotate-keys failed: {out}"
    assert kek not in p.stdout + p.stderr, "rotate-keys printed the key-encryption key"
    kids = re.findall(r"^kid=(\S+)\s*$", p.stdout, re.M)
    assert len(kids) == 1, f"rotate-keys should print one kid=<new kid> line: {out}"
    return kids[0]


def test_rotation_reaches_identity_and_the_ledger(stack, identity, ledger, admin, uniq):
    client = (stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"])
    token_a = idl.token_set(identity.client_credentials(*client), "token A")
    kid_a = token_a.header["kid"]
    user_a = identity.login_tokens(admin.username, admin.password)
    assert user_a.header["kid"] == kid_a
    before = [k["kid"] for k in identity.jwks()["keys"]]
    assert before[0] == kid_a, f"the JWKS lists the current key first: {before}, tokens use {kid_a}"
    r = ledger.post_entries(make_items(uniq("before"), 1), token=token_a.access_token)
    assert r.status_code == 200, f"the ledger refuses a token from identity before any rotation: {r.status_code} {r.text[:300]}"

    new_kid = rotate_keys(stack)
    assert new_kid not in before, f"rotate-keys printed a kid that already existed: {new_kid} in {before}"

    # Identity signs with the new key soon (once it is older than twice SIGNING_KEY_REFRESH_MS).
    started = time.monotonic()
    while True:
        token_b = idl.token_set(identity.client_credentials(*client), "token after the rotation")
        kid = token_b.header["kid"]
        if kid == new_kid:
            break
        assert kid == kid_a, f"tokens signed with {kid}, neither the old {kid_a} nor the new {new_kid}"
        assert time.monotonic() - started < SIGNING_WAIT, f"identity still signs with {kid_a} after {SIGNING_WAIT} s"
        time.sleep(0.2)
    print(f"identity signed with {new_kid} after {time.monotonic() - started:.1f} s")

    # The JWKS: the new key first, the previous one still there (older ones retired).
    after = [k["kid"] for k in identity.jwks()["keys"]]
    assert after[0] == new_kid and kid_a in after and len(after) == 2, f"JWKS kids after the rotation: {after}"
    # Independently verified, old and new.
    idl.assert_access_token(token_b, stack["IDENTITY_URL"], sub=client[0], role="service", session=False)
    assert idl.verify_token(token_a.access_token, stack["IDENTITY_URL"])["sub"] == client[0]

    # Identity itself accepts user tokens signed before and after.
    assert identity.me(user_a.access_token).status_code == 200, "identity rejects its own token signed before the rotation"
    user_b = identity.login_tokens(admin.username, admin.password)
    assert user_b.header["kid"] == new_kid
    assert identity.me(user_b.access_token).status_code == 200

    # The ledger: the new kid is unknown to it until it refetches the JWKS (at most every 10 s).
    started = time.monotonic()
    refusals = []
    while True:
        r = ledger.post_entries(make_items(uniq("after"), 1), token=token_b.access_token)
        if r.status_code == 200:
            break
        assert r.status_code == 401, f"the ledger answered {r.status_code} for a new-key token: {r.text[:300]}"
        refusals.append(r.json().get("detail"))
        assert time.monotonic() - started < LEDGER_WAIT, (
            f"the ledger still refuses tokens signed with {new_kid} after {LEDGER_WAIT} s: {refusals[-3:]}"
        )
        time.sleep(0.5)
    print(f"the ledger accepted the new key after {time.monotonic() - started:.1f} s ({len(refusals)} refusals)")
    # ... and, with the refetched key set, still the token signed before the rotation.
    r = ledger.post_entries(make_items(uniq("old-token"), 1), token=token_a.access_token)
    assert r.status_code == 200, f"the ledger refuses a token signed with the previous key: {r.status_code} {r.text[:300]}"
    forget_service_tokens()
