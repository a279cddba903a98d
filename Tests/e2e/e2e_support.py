"""Non-fixture helpers for the black-box tests: stack.env loading, the HTTP client,
problem+json assertions, token minting, the CLI runner and the Go oracle runner."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import jwt
import ledgerlib
import pytest
import requests

REQUIRED_KEYS = (
    "LEDGER_URL",
    "LEDGER_VKEY",
    "LEDGER_ORIGIN",
    "SERVICE_TOKEN",
    "DEV_JWT_KEY",
    "DEV_JWT_ISSUER",
    "MEDLEDGER_BIN",
)
HTTP_TIMEOUT = 60
APPEND_SCOPE = "medledger/ledger.append"
AUDIENCE = "medledger"
GOPATH = "/usr/share/gocode"


def repo_root() -> Path:
    return Path(os.environ.get("REPO") or Path(__file__).resolve().parents[2])


def load_stack_env() -> dict[str, str]:
    path = os.environ.get("STACK_ENV")
    if not path:
        pytest.fail(
            "STACK_ENV is not set: point it at the stack.env written by `deploy/local/stack up` "
            "(e.g. STACK_ENV=$REPO/.local/stack.env)",
            pytrace=False,
        )
    p = Path(path)
    if not p.is_file():
        pytest.fail(f"STACK_ENV={path} does not exist; run `deploy/local/stack up` first", pytrace=False)
    env: dict[str, str] = {}
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    missing = [k for k in REQUIRED_KEYS if not env.get(k)]
    if missing:
        pytest.fail(f"{path} lacks {', '.join(missing)}", pytrace=False)
    env["LEDGER_URL"] = env["LEDGER_URL"].rstrip("/")
    return env


def run_cli(exe: Path, *args: str, input: bytes | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], check=False, input=input, capture_output=True, timeout=timeout)


# --------------------------------------------------------------------------- HTTP


class Ledger:
    """A thin HTTP client; every call has a timeout, nothing is retried."""

    def __init__(self, stack: dict[str, str]):
        self.base = stack["LEDGER_URL"]
        self.vkey = stack["LEDGER_VKEY"]
        self.origin = stack["LEDGER_ORIGIN"]
        self.service_token = stack["SERVICE_TOKEN"]
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.get(self.base + path, **kw)

    def post_raw(self, path: str, body: bytes, token: str | None = "service", headers=None, **kw) -> requests.Response:
        h = {"Content-Type": "application/json"}
        if token == "service":
            token = self.service_token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.post(self.base + path, data=body, headers=h, **kw)

    def post_entries(self, items: list[dict], wait: bool = False, token: str | None = "service") -> requests.Response:
        path = "/entries?wait=checkpoint" if wait else "/entries"
        return self.post_raw(path, ledgerlib.compact_json({"entries": items}), token=token)

    def append(self, items: list[dict], wait: bool = False) -> dict:
        """POST and insist on 200; returns the JSON body."""
        r = self.post_entries(items, wait=wait)
        assert r.status_code == 200, f"append failed: {r.status_code} {r.text[:500]}"
        body = r.json()
        assert [e["idempotencyKey"] for e in body["entries"]] == [i["idempotencyKey"] for i in items]
        return body

    def checkpoint(self) -> ledgerlib.Checkpoint:
        r = self.get("/checkpoint")
        assert r.status_code == 200, f"GET /checkpoint: {r.status_code} {r.text[:300]}"
        assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
        return self.verify_checkpoint(r.text)

    def verify_checkpoint(self, text: str) -> ledgerlib.Checkpoint:
        return ledgerlib.verify_checkpoint(text, self.vkey, self.origin)

    def entry_bytes(self, index: int) -> bytes:
        r = self.get(f"/entries/{index}")
        assert r.status_code == 200, f"GET /entries/{index}: {r.status_code} {r.text[:300]}"
        return r.content

    def inclusion(self, index: int, size: int) -> list[bytes]:
        r = self.get("/proofs/inclusion", params={"index": index, "size": size})
        assert r.status_code == 200, f"inclusion {index}@{size}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body["index"] == index and body["size"] == size, body
        return [ledgerlib.unb64(h) for h in body["hashes"]]

    def consistency(self, a: int, b: int) -> list[bytes]:
        r = self.get("/proofs/consistency", params={"from": a, "to": b})
        assert r.status_code == 200, f"consistency {a}->{b}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body["from"] == a and body["to"] == b, body
        return [ledgerlib.unb64(h) for h in body["hashes"]]


def wait_for_size(ledger: Ledger, size: int, timeout: float = 20) -> ledgerlib.Checkpoint:
    """Poll GET /checkpoint until it covers `size` leaves (404 before the first checkpoint)."""
    deadline = time.time() + timeout
    while True:
        r = ledger.get("/checkpoint")
        if r.status_code == 200:
            cp = ledger.verify_checkpoint(r.text)
            if cp.size >= size:
                return cp
        else:
            assert r.status_code == 404, f"GET /checkpoint: {r.status_code} {r.text[:200]}"
        assert time.time() < deadline, f"no checkpoint covering {size} leaves within {timeout} s"
        time.sleep(0.1)


def assert_problem(r: requests.Response, allowed: set[int] | int, what: str = "") -> dict:
    """An RFC 9457 problem response with one of the allowed statuses (never a 5xx)."""
    allowed = {allowed} if isinstance(allowed, int) else set(allowed)
    ctx = (
        f"{what} {r.request.method} {r.request.url} -> {r.status_code} {r.headers.get('Content-Type')} {r.text[:300]!r}"
    )
    assert r.status_code < 500, "server error for bad input: " + ctx
    assert r.status_code in allowed, f"expected one of {sorted(allowed)}: " + ctx
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/problem+json", ctx
    body = r.json()
    assert isinstance(body, dict), ctx
    assert body.get("status") == r.status_code, ctx
    assert isinstance(body.get("title"), str) and body["title"], ctx
    return body


# --------------------------------------------------------------------------- unique names and entries


_run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
_counter = itertools.count()


def unique_name(test: str, label: str = "x") -> str:
    """A name unique to this run (timestamp + random), test and call."""
    return f"e2e-{_run_id}-{test[:40]}-{label}-{next(_counter)}"


def make_items(prefix: str, n: int, **extra) -> list[dict]:
    """n append items with distinct keys and distinct entries."""
    return [
        {"idempotencyKey": f"{prefix}-{i}", "entry": {"kind": "e2e-test", "id": f"{prefix}-{i}", "n": i, **extra}}
        for i in range(n)
    ]


# --------------------------------------------------------------------------- tokens


class Tokens:
    def __init__(self, stack: dict[str, str], exe: Path):
        self.stack = stack
        self.exe = exe
        self._cache: dict[tuple, str] = {}

    def cli(self, subject: str, role: str, scope: str, audience: str = AUDIENCE, issuer: str | None = None) -> str:
        """A token minted by `medledger dev-token` with the stack's dev key."""
        k = (subject, role, scope, audience, issuer)
        if k not in self._cache:
            p = run_cli(
                self.exe, "dev-token",
                "--key", self.stack["DEV_JWT_KEY"],
                "--issuer", issuer or self.stack["DEV_JWT_ISSUER"],
                "--audience", audience,
                "--subject", subject,
                "--role", role,
                "--scope", scope,
            )  # fmt: skip
            assert p.returncode == 0, f"dev-token failed: {p.stderr.decode()}"
            tok = p.stdout.decode().strip()
            assert tok.count(".") == 2, f"dev-token printed {tok!r}"
            self._cache[k] = tok
        return self._cache[k]

    def signing_jwk(self) -> dict:
        return json.loads(Path(self.stack["DEV_JWT_KEY"]).read_text())

    def pyjwt(self, *, key=None, kid: str | None = None, **claims) -> str:
        """A token minted independently with PyJWT (EdDSA) from the dev signing JWK,
        with claim overrides (pass a claim as None to drop it)."""
        jwk = self.signing_jwk()
        now = int(time.time())
        body = {
            "iss": self.stack["DEV_JWT_ISSUER"],
            "sub": "e2e-pyjwt",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "sid": uuid.uuid4().hex,
            "role": "service",
            "scope": APPEND_SCOPE,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signing_key = key if key is not None else jwt.PyJWK(jwk, algorithm="EdDSA").key
        headers = {"kid": kid if kid is not None else jwk.get("kid")}
        return jwt.encode(body, signing_key, algorithm="EdDSA", headers=headers)


# --------------------------------------------------------------------------- Go oracle


def run_tlogcheck(input_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    go = shutil.which("go")
    if not go:
        pytest.fail("`go` not found: apt-get install -y golang-go golang-golang-x-mod-dev", pytrace=False)
    if not (Path(GOPATH) / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.fail(
            f"{GOPATH}/src/golang.org/x/mod/sumdb missing: apt-get install -y golang-golang-x-mod-dev", pytrace=False
        )
    env = {k: v for k, v in os.environ.items() if k not in ("GOFLAGS", "GOROOT")}
    env.update(
        GO111MODULE="off",
        GOPATH=GOPATH,
        GOCACHE=os.environ.get("GOCACHE") or "/tmp/medledger-e2e-gocache",  # go needs one even without HOME
        GOTOOLCHAIN="local",
    )
    return subprocess.run(
        [go, "run", "./Tests/oracle/tlogcheck", str(input_path)],
        check=False,
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
