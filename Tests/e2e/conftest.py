"""Fixtures for the black-box tests against a running ledger.

The stack is started by `deploy/local/stack up`, which writes KEY=value lines to a
stack.env file; STACK_ENV names that file. All tests of a run share one ledger, so
tests never assume absolute indices or tree sizes: they compare against what they
appended themselves, and every entry carries a unique prefix (the `uniq` fixture).
Helpers that are not fixtures live in e2e_support.py and ledgerlib.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from e2e_support import Ledger, Tokens, load_stack_env, unique_name


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The stack.env named by STACK_ENV, as a dict (fails, never skips, if absent)."""
    return load_stack_env()


@pytest.fixture(scope="session")
def medledger(stack) -> Path:
    """Path of the `medledger` CLI from MEDLEDGER_BIN."""
    exe = Path(stack["MEDLEDGER_BIN"]) / "medledger"
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} is not an executable (MEDLEDGER_BIN in STACK_ENV)", pytrace=False)
    return exe


@pytest.fixture(scope="session")
def ledger(stack) -> Ledger:
    """HTTP client for the running ledger; fails the test if it is not ready."""
    client = Ledger(stack)
    try:
        r = client.get("/health/ready", timeout=10)
    except requests.RequestException as e:
        pytest.fail(f"ledger at {client.base} is not reachable: {e}", pytrace=False)
    if r.status_code != 200:
        pytest.fail(f"ledger at {client.base} is not ready: {r.status_code} {r.text[:200]}", pytrace=False)
    return client


@pytest.fixture(scope="session")
def tokens(stack, medledger) -> Tokens:
    """Token minting: tokens.cli(...) via `medledger dev-token`, tokens.pyjwt(...) via PyJWT."""
    return Tokens(stack, medledger)


@pytest.fixture
def uniq(request):
    """uniq("label") -> a string unique to this run, this test and this call."""
    return lambda label="x": unique_name(request.node.name, label)
