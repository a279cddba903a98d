"""The ledger against its own OpenAPI document, fuzzed by schemathesis (pinned in
requirements.txt: schemathesis==4.32.5), run through its CLI with bounded examples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

CHECKS = [
    "not_a_server_error",  # never a 5xx, whatever the input
    "response_schema_conformance",  # bodies match the documented schemas
    "content_type_conformance",  # Content-Type is one the document lists
    "status_code_conformance",  # every status returned is documented
    "ignored_auth",  # operations that declare security reject missing/invalid credentials
]
MAX_EXAMPLES = 25
TIMEOUT = 240  # seconds; the bounded run normally needs well under two minutes

CONTRACT_PATHS = ["/entries", "/checkpoint", "/proofs/inclusion", "/proofs/consistency"]


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("st")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("st") or shutil.which("schemathesis")
    assert found, "schemathesis CLI not found in the test virtualenv (pip install -r Tests/e2e/requirements.txt)"
    return [found]


def test_openapi_document_describes_the_contract(ledger):
    r = ledger.get("/openapi.yaml")
    assert r.status_code == 200, r.status_code
    doc = yaml.safe_load(r.text)
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    paths = doc.get("paths", {})
    for p in CONTRACT_PATHS:
        assert p in paths, f"{p} missing from openapi.yaml (has {sorted(paths)})"
    assert any(p.startswith("/entries/{") and "tlog-proof" not in p for p in paths), sorted(paths)
    assert any(p.endswith("/tlog-proof") for p in paths), sorted(paths)
    assert any(p.startswith("/tile/") for p in paths), sorted(paths)
    assert "post" in paths["/entries"], paths["/entries"]


def test_schemathesis_fuzz(ledger, stack, tmp_path):
    cmd = _schemathesis() + [
        "run", f"{stack['LEDGER_URL']}/openapi.yaml",
        "--url", stack["LEDGER_URL"],
        "--header", f"Authorization: Bearer {stack['SERVICE_TOKEN']}",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "2",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-dir", str(tmp_path),
        "--generation-database", "none",
        "--no-color",
    ]  # fmt: skip
    env = dict(os.environ, NO_COLOR="1")
    try:
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"schemathesis exceeded {TIMEOUT} s:\n{(e.stdout or b'')[-4000:]!r}") from None
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"schemathesis exit {p.returncode}:\n{out[-12000:]}"
    # Guard against a vacuous pass (e.g. an empty document): something must have run.
    assert "passed" in out.lower() or "✅" in out, out[-3000:]
