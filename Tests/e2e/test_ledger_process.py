"""The ledger executable as operators run it: the healthcheck subcommand that container health
checks call, metrics after traffic, JSON logs carrying the request id, clear startup errors
for bad configuration (never a crash dump), and the token checks of a ledger process that trusts
a key made in Python (e2e_support.LocalIssuer) instead of identity's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import identitylib
import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import (
    APPEND_SCOPE,
    ServiceProcess,
    LocalIssuer,
    assert_problem,
    ledger_process_env,
    safe_free_port,
    wait_for_size,
)


def ledger_exe(stack) -> str:
    return str(Path(stack["MEDLEDGER_BIN"]) / "medledger-ledger")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_subcommand(stack):
    port = str(urlparse(stack["LEDGER_URL"]).port)
    ok = subprocess.run([ledger_exe(stack), "healthcheck"], env={**os.environ, "HTTP_PORT": port}, capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    down = subprocess.run(
        [ledger_exe(stack), "healthcheck"], env={**os.environ, "HTTP_PORT": str(free_port())}, capture_output=True, timeout=30
    )
    assert down.returncode == 1, down.stdout + down.stderr


def test_metrics_count_requests_per_route(ledger):
    for _ in range(3):
        ledger.get("/checkpoint")
    text = ledger.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("hb_requests") and "/checkpoint" in line]
    assert lines, text[:2000]


def run_ledger(stack, issuer: LocalIssuer, extra_env: dict[str, str], seconds: float = 20) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "DATABASE_URL": stack["LEDGER_DATABASE_URL"],
        "MEDLEDGER_ENV": "development",
        **issuer.env(),
        **extra_env,
    }
    return subprocess.run([ledger_exe(stack), "serve"], env=env, capture_output=True, timeout=seconds)


def test_bad_configuration_is_a_clear_startup_error(stack, local_issuer):
    cases = {
        "HTTP_PORT=abc": ({"HTTP_PORT": "abc"}, "HTTP_PORT=abc"),
        "production without key": ({"MEDLEDGER_ENV": "production", "JWKS_URL": "http://127.0.0.1:9/jwks.json"}, "LEDGER_SKEY is required"),
        "malformed key": ({"LEDGER_SKEY": "PRIVATE+KEY+nope"}, "LEDGER_SKEY"),
        "key for another origin": (
            {"LEDGER_SKEY": subprocess.run(
                [str(Path(stack["MEDLEDGER_BIN"]) / "medledger"), "keygen", "--origin", "other.example/log"],
                capture_output=True, text=True, check=True,
            ).stdout.splitlines()[0].split("=", 1)[1]},
            "LEDGER_ORIGIN",
        ),
        "bad database url": ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    }
    for name, (env, mention) in cases.items():
        result = run_ledger(stack, local_issuer, env)
        err = result.stderr.decode()
        assert result.returncode == 2, f"{name}: exit {result.returncode}: {err[-500:]}"
        assert "configuration error:" in err and mention in err, f"{name}: {err[-500:]}"
        assert "Backtrace" not in err and "Fatal error" not in err, f"{name}: {err[-500:]}"
        if "LEDGER_SKEY" in env:
            # PRIVATE+KEY+<name>+<hash>+<base64 key>: the key's base64 may itself hold a '+'.
            secret = env["LEDGER_SKEY"].split("+", 4)[-1]
            assert secret not in err, f"{name}: the secret key leaked into the log"


def test_json_logs_carry_the_request_id(stack, local_issuer, tmp_path):
    port = free_port()
    log = open(tmp_path / "ledger.log", "wb")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "DATABASE_URL": stack["LEDGER_DATABASE_URL"],
        **local_issuer.env(),
        "MEDLEDGER_ENV": "development",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "debug",
    }
    process = subprocess.Popen([ledger_exe(stack), "serve"], env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/health/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        r = requests.get(base + "/proofs/inclusion?index=x&size=1", headers={"X-Request-ID": "e2e-trace-42"}, timeout=10)
        assert r.status_code == 400 and r.headers["X-Request-ID"] == "e2e-trace-42"
        assert r.json()["instance"] == "urn:request:e2e-trace-42"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    records = [json.loads(line) for line in (tmp_path / "ledger.log").read_text().splitlines() if line.startswith("{")]
    assert records, (tmp_path / "ledger.log").read_text()[-2000:]
    assert all({"time", "level", "message"} <= set(r) for r in records)
    assert any(r.get("request_id") == "e2e-trace-42" for r in records), records[-5:]
    assert process.returncode == 0, "graceful shutdown on SIGTERM should exit 0"


def _post_one(client, key: str, token: str | None, n: int):
    return client.post_entries([{"idempotencyKey": key, "entry": {"kind": "e2e-test", "id": key, "n": n}}], token=token)


def test_token_checks_against_a_python_issuer(stack, local_issuer, tmp_path, uniq):
    """A ledger process trusting only a JWKS file made in Python (LocalIssuer): every claim the
    token contract requires is checked, with tokens identity would never issue."""
    port = safe_free_port()
    proc = ServiceProcess(
        Path(ledger_exe(stack)), ledger_process_env(stack, local_issuer, port), port, tmp_path / "ledger.log",
        token=local_issuer.token(),
    )  # fmt: skip
    try:
        proc.start()
        here = proc.client(stack)
        key = uniq("auth")
        now = int(time.time())
        valid = local_issuer.token()
        other_key = Ed25519PrivateKey.generate()
        no_kid = jwt.encode(identitylib.unverified_claims(valid), local_issuer.key, algorithm="EdDSA")
        assert "kid" not in jwt.get_unverified_header(no_kid)
        alg_none = identitylib.b64url(b'{"alg":"none","typ":"JWT"}') + "." + valid.split(".")[1] + "."
        cases = {
            "no token": (None, 401),
            "garbage": ("not-a-jwt", 401),
            "scope lacking": (local_issuer.token(scope="medledger/audit.write"), 403),
            "scope prefix only": (local_issuer.token(scope="medledger/ledger.append.all"), 403),
            "wrong audience": (local_issuer.token(aud="other"), 401),
            "audience list without ours": (local_issuer.token(aud=["other", "another"]), 401),
            "expired": (local_issuer.token(iat=now - 7200, exp=now - 3600), 401),
            "not yet valid (nbf in an hour)": (local_issuer.token(nbf=now + 3600), 401),
            "wrong issuer": (local_issuer.token(iss="http://evil.example"), 401),
            "no exp": (local_issuer.token(exp=None), 401),
            "same kid, other signing key": (local_issuer.token(key=other_key), 401),
            "unknown kid": (local_issuer.token(key=other_key, kid=f"e2e-unknown-{uuid.uuid4().hex[:8]}"), 401),
            "no kid": (no_kid, 401),
            "alg none": (alg_none, 401),
            "bad signature": (identitylib.tamper_signature(valid), 401),
            "payload altered": (identitylib.tamper_claims(local_issuer.token(scope="medledger/audit.write"),
                                                          scope=APPEND_SCOPE), 401),
        }  # fmt: skip
        failures = []
        for name, (token, status) in cases.items():
            r = _post_one(here, key, token, n=1)
            try:
                assert_problem(r, status, name)
            except AssertionError as e:
                failures.append(str(e).split("\n")[0])
        assert not failures, "\n".join(failures) + "\n" + proc.tail(30)

        # Positive controls: several scopes, aud as a one-element array, a user-like token with a sid.
        r = _post_one(here, key, local_issuer.token(scope=f"openid {APPEND_SCOPE} medledger/audit.write"), n=2)
        assert r.status_code == 200, r.text
        idx = r.json()["entries"][0]["index"]
        for name, token in {
            "plain": valid,
            "aud array": local_issuer.token(aud=[local_issuer.audience]),
            "with sid and fhirUser": local_issuer.token(sid=str(uuid.uuid4()), fhirUser="Organization/e2e", trusted=True),
        }.items():
            r2 = _post_one(here, uniq(f"auth-{name.replace(' ', '-')}"), token, n=0)
            assert r2.status_code == 200, f"{name}: {r2.status_code} {r2.text[:300]}"
        # None of the rejected requests stored anything under the key (n=1 would win).
        wait_for_size(here, idx + 1)
        assert json.loads(here.entry_bytes(idx))["n"] == 2
    finally:
        status = proc.kill()
        print(f"ledger process exit status {status}\n{proc.tail(40)}")
