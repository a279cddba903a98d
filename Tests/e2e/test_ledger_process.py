"""The ledger executable as operators run it: the healthcheck subcommand that container health
checks call, metrics after traffic, JSON logs carrying the request id, and clear startup errors
for bad configuration (never a crash dump)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import requests


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


def run_ledger(stack, extra_env: dict[str, str], seconds: float = 20) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "DATABASE_URL": stack["LEDGER_DATABASE_URL"],
        "JWKS_URL": "file://" + stack["DEV_JWT_JWKS"],
        "MEDLEDGER_ENV": "development",
        **extra_env,
    }
    return subprocess.run([ledger_exe(stack), "serve"], env=env, capture_output=True, timeout=seconds)


def test_bad_configuration_is_a_clear_startup_error(stack):
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
        result = run_ledger(stack, env)
        err = result.stderr.decode()
        assert result.returncode == 2, f"{name}: exit {result.returncode}: {err[-500:]}"
        assert "configuration error:" in err and mention in err, f"{name}: {err[-500:]}"
        assert "Backtrace" not in err and "Fatal error" not in err, f"{name}: {err[-500:]}"
        if "LEDGER_SKEY" in env:
            secret = env["LEDGER_SKEY"].rsplit("+", 1)[-1]
            assert secret not in err, f"{name}: the secret key leaked into the log"


def test_json_logs_carry_the_request_id(stack, tmp_path):
    port = free_port()
    log = open(tmp_path / "ledger.log", "wb")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "DATABASE_URL": stack["LEDGER_DATABASE_URL"],
        "JWKS_URL": "file://" + stack["DEV_JWT_JWKS"],
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
