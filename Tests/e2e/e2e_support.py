"""Non-fixture helpers for the black-box tests: stack.env loading, the HTTP client,
problem+json assertions, service tokens from identity, Python-minted tokens for ledger
processes the tests start themselves, the CLI runner and the Go oracle runner."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import identitylib
import jwt
import ledgerlib
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REQUIRED_KEYS = (
    "STACK_DIR",
    "IDENTITY_URL",
    "LEDGER_URL",
    "LEDGER_VKEY",
    "LEDGER_ORIGIN",
    "MEDLEDGER_BIN",
    "ADMIN_USER",
    "ADMIN_PASSWORD",
    "SERVICE_CLIENT_ID",
    "SERVICE_CLIENT_SECRET",
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


def read_kv(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blank lines ignored), e.g. $STACK_DIR/secrets.env."""
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def stack_secret(stack: dict[str, str], name: str) -> str:
    """One value from $STACK_DIR/secrets.env (fails the test if it is not there)."""
    path = Path(stack["STACK_DIR"]) / "secrets.env"
    value = read_kv(path).get(name) if path.is_file() else None
    if not value:
        pytest.fail(f"no {name} in {path}", pytrace=False)
    return value


def run_cli(exe: Path, *args: str, input: bytes | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], check=False, input=input, capture_output=True, timeout=timeout)


# --------------------------------------------------------------------------- HTTP


class Ledger:
    """A thin HTTP client; every call has a timeout, nothing is retried."""

    def __init__(self, stack: dict[str, str], token: str | Callable[[], str] | None = None):
        """token: the bearer token for writes (a string or a function giving one); by default
        the stack's script client's token from identity (client_credentials, cached)."""
        self.base = stack["LEDGER_URL"]
        self.vkey = stack["LEDGER_VKEY"]
        self.origin = stack["LEDGER_ORIGIN"]
        self._token = token if token is not None else (lambda: service_token(stack))
        self.http = requests.Session()

    @property
    def service_token(self) -> str:
        return self._token() if callable(self._token) else self._token

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


# --------------------------------------------------------------------------- tokens from identity

_service_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_service_lock = threading.Lock()
SERVICE_TOKEN_MARGIN = 120  # seconds before expiry at which a cached token is replaced


def service_token(stack: dict[str, str], fresh: bool = False) -> str:
    """An access token for the stack's script client (SERVICE_CLIENT_ID/SECRET: role service,
    scopes medledger/ledger.append, audit.write, consent.decide) from identity by
    client_credentials with HTTP Basic; cached per run until shortly before it expires."""
    key = (stack["IDENTITY_URL"], stack["SERVICE_CLIENT_ID"])
    with _service_lock:
        cached = _service_tokens.get(key)
        if cached and not fresh and time.time() < cached[1]:
            return cached[0]
        url = stack["IDENTITY_URL"].rstrip("/") + "/auth/token"
        try:
            r = requests.post(
                url,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": identitylib.basic_auth(stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"])},
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as e:
            raise AssertionError(f"identity at {url} is not reachable for the service token: {e}") from None
        assert r.status_code == 200, f"client_credentials for {stack['SERVICE_CLIENT_ID']}: {r.status_code} {r.text[:300]}"
        body = r.json()
        token, ttl = body["access_token"], int(body["expires_in"])
        _service_tokens[key] = (token, time.time() + max(10, ttl - SERVICE_TOKEN_MARGIN))
        return token


def forget_service_tokens() -> None:
    """Drop cached service tokens (e.g. after a key rotation test)."""
    with _service_lock:
        _service_tokens.clear()


# --------------------------------------------------------------------------- tokens minted in Python


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict:
    """RFC 8037 OKP JWK of an Ed25519 public key."""
    x = identitylib.b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}


class LocalIssuer:
    """A token issuer made in Python for ledger processes the tests start themselves: an
    Ed25519 key, its JWKS in a file (JWKS_URL=file://…, development mode only) and PyJWT
    to sign. The process is told the same issuer and audience (env()), so these tokens are
    exactly what it accepts unless a test spoils a claim on purpose."""

    def __init__(self, directory: Path, issuer: str, audience: str = AUDIENCE):
        directory.mkdir(parents=True, exist_ok=True)
        self.issuer = issuer
        self.audience = audience
        self.key = Ed25519PrivateKey.generate()
        self.kid = f"e2e-local-{uuid.uuid4().hex[:12]}"
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": [public_jwk(self.key, self.kid)]}))

    @property
    def jwks_url(self) -> str:
        return "file://" + str(self.jwks_path.resolve())

    def env(self) -> dict[str, str]:
        """What a service process needs to trust exactly these tokens."""
        return {
            "JWKS_URL": self.jwks_url,
            "IDENTITY_URL": self.issuer,
            "IDENTITY_ISSUER": self.issuer,
            "MEDLEDGER_AUDIENCE": self.audience,
        }

    def token(self, *, key: Ed25519PrivateKey | None = None, kid: str | None = None, ttl: int = 600, **claims) -> str:
        """A service token (role service, scope ledger.append, no sid: like client_credentials)
        with claim overrides; pass a claim as None to drop it. key/kid sign with another key or
        name another key id."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": "e2e-local-service",
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
            "role": "service",
            "scope": APPEND_SCOPE,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="EdDSA", headers={"kid": kid or self.kid})


# --------------------------------------------------------------------------- ledger processes


def safe_free_port() -> int:
    """A free 127.0.0.1 port outside the kernel's ephemeral range: a process restarted on the
    same port must not find it taken meanwhile as the source port of some outgoing connection."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = range(20000, low) if low > 21000 else range(high + 1, 65536)
    for port in random.Random().sample(candidates, min(50, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free 127.0.0.1 port in {candidates}", pytrace=False)


def ledger_process_env(stack: dict[str, str], issuer: LocalIssuer, port: int, **extra: str) -> dict[str, str]:
    """Environment of an extra `medledger-ledger serve` on the stack ledger's database, with the
    stack's log key (so its checkpoints verify with LEDGER_VKEY) and trusting only `issuer`."""
    for k in ("LEDGER_DATABASE_URL", "STACK_DIR"):
        if not stack.get(k):
            pytest.fail(f"STACK_ENV lacks {k}", pytrace=False)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "DATABASE_URL": stack["LEDGER_DATABASE_URL"],
        "MEDLEDGER_ENV": "development",
        **issuer.env(),
        "LEDGER_SKEY": stack_secret(stack, "LEDGER_SKEY"),
        "LEDGER_ORIGIN": stack["LEDGER_ORIGIN"],
        "LOG_FORMAT": "text",
        **extra,
    }


def stack_process_env(stack: dict[str, str], name: str, port: int, **overrides: str) -> tuple[Path, dict[str, str]]:
    """The executable and environment `deploy/local/stack` started service `name` with (saved
    in $STACK_DIR/pids/NAME.env), listening on `port` instead, with overrides: a second instance
    of a stack service on the same database."""
    saved = Path(stack["STACK_DIR"]) / "pids" / f"{name}.env"
    if not saved.is_file():
        pytest.fail(f"{saved} is missing: was {name} started by deploy/local/stack?", pytrace=False)
    bin_dir, *pairs = [p.decode() for p in saved.read_bytes().split(b"\0") if p]
    env = dict(p.split("=", 1) for p in pairs)
    env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HTTP_PORT=str(port), **overrides)
    return Path(bin_dir) / f"medledger-{name}", env


class ServiceProcess:
    """One extra `medledger-<service> serve`, started and killed by the test, logging to a file.
    `token` is what clients of this process send (see LocalIssuer)."""

    def __init__(self, exe: Path, env: dict[str, str], port: int, log_path: Path, token: str | None = None,
                 ready_timeout: float = 30):  # fmt: skip
        self.exe, self.env, self.port, self.log_path = exe, env, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def client(self, stack: dict[str, str]) -> Ledger:
        return Ledger({**stack, "LEDGER_URL": self.url}, token=self.token)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "previous process still running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== e2e: start #{self.starts} on port {self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(self.exe), "serve"],
                env=self.env,
                cwd=self.log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no terminal signals; killed only by us, by pid
            )
        deadline = time.monotonic() + self.ready_timeout
        session = requests.Session()
        what = f"{self.exe.name} (start #{self.starts})"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(f"{what} exited with {rc} before it was ready\n{self.tail()}", pytrace=False)
            try:
                if session.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not ready at {self.url} within {self.ready_timeout} s\n{self.tail()}", pytrace=False)
            time.sleep(0.1)

    def kill(self) -> int | None:
        """SIGKILL (by our own pid) and reap; returns the exit status, None if never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(timeout=15)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError as e:
            return f"(no log: {e})"
        return f"--- last {len(text)} lines of {self.log_path} ---\n" + "\n".join(text)

# --------------------------------------------------------------------------- the stack's own services


def stack_command(stack: dict[str, str], *args: str) -> None:
    """`deploy/local/stack ARGS…` on the running stack (e.g. "kill", "records"; "start", "records")."""
    p = subprocess.run([str(repo_root() / "deploy/local/stack"), *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "STACK_DIR": stack["STACK_DIR"]})  # fmt: skip
    assert p.returncode == 0, f"stack {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}"


def service_running(stack: dict[str, str], name: str) -> bool:
    """Whether the stack's instance `name` (records, records-2, …) runs, by its pid file."""
    pid_file = Path(stack["STACK_DIR"]) / "pids" / f"{name}.pid"
    try:
        cmdline = Path(f"/proc/{int(pid_file.read_text())}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return f"medledger-{name.split('-')[0]}".encode() in cmdline


def ready(stack: dict[str, str], name: str) -> bool:
    """Whether the first instance of service `name` answers /health/ready."""
    try:
        return requests.get(stack[f"{name.upper()}_URL"].rstrip("/") + "/health/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


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
