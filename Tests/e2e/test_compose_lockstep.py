"""docker-compose.yml and the image in step with the repository and the local stack: every
service executable the repository has runs in compose like the stack runs it (its command,
health check, database, port and OAuth client, registered at identity with the scopes the
stack gives it), and the image builds and ships it with its resource bundle.

These read files only; they need no running stack.
"""

from __future__ import annotations

import re

import pytest
import yaml
from e2e_support import repo_root

REPO = repo_root()


def repo_services() -> list[str]:
    """identity, records, …: one per Services/<Name>Server executable target."""
    names = sorted(p.name[: -len("Server")] for p in (REPO / "Services").iterdir() if p.is_dir() and p.name.endswith("Server"))
    assert names, "no Services/*Server targets found"
    return names


def stack_script() -> str:
    return (REPO / "deploy/local/stack").read_text()


def stack_client_scopes() -> dict[str, set[str]]:
    """client_scopes() of deploy/local/stack: `name) echo scope scope… ;;` per client."""
    body = re.search(r"^client_scopes\(\) \{\n(.*?)^\}", stack_script(), re.S | re.M)
    assert body, "client_scopes() not found in deploy/local/stack"
    scopes = {}
    for name, words in re.findall(r'^\s+("\$SCRIPT_CLIENT"|[a-z]+)\) echo ([^;]+) ;;', body.group(1), re.M):
        scopes[name] = set(words.split())
    return scopes


def stack_port(name: str) -> int:
    match = re.search(rf"\b{name}\) echo (\d+) ;;", stack_script())
    assert match, f"base_port of {name} not found in deploy/local/stack"
    return int(match.group(1))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.mark.parametrize("target", repo_services())
def test_every_service_runs_in_compose(compose, target):
    name = target.lower()
    service = compose["services"].get(name)
    assert service, f"Services/{target}Server exists but docker-compose.yml has no service {name}"
    assert service["command"] == [f"medledger-{name}", "serve"], service["command"]
    assert service["healthcheck"]["test"] == ["CMD", f"medledger-{name}", "healthcheck"], service["healthcheck"]
    env = service["environment"]
    port = stack_port(name)
    assert str(env["HTTP_PORT"]) == str(port), env["HTTP_PORT"]
    assert any(str(p).endswith(f":{port}") for p in service.get("ports", [])), service.get("ports")
    assert env["DATABASE_URL"].startswith(f"postgres://{name}:") and env["DATABASE_URL"].endswith(f"@postgres:5432/{name}"), env["DATABASE_URL"]
    assert env["MEDLEDGER_ENV"] == "production" and env["HTTP_HOST"] == "0.0.0.0"
    assert env["OAUTH_CLIENT_ID"] == name
    assert f"{name.upper()}_CLIENT_SECRET" in env["OAUTH_CLIENT_SECRET"], env["OAUTH_CLIENT_SECRET"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def _sources_mention(target: str, text: str) -> bool:
    return any(text in f.read_text() for f in (REPO / "Services" / target).rglob("*.swift"))


@pytest.mark.parametrize("target", repo_services())
def test_every_service_reaches_its_peers_in_compose(compose, target):
    """A service with an audit outbox delivers it to audit, and one that anchors in the ledger
    (LedgerPeer) reaches the ledger and checks its checkpoints, inside the compose network."""
    env = compose["services"][target.lower()]["environment"]
    if target != "Audit" and _sources_mention(target, "CREATE TABLE audit_outbox"):
        assert env.get("AUDIT_URL") == "http://audit:8084", f"{target} has an audit outbox but AUDIT_URL is {env.get('AUDIT_URL')}"
    if _sources_mention(target, "LedgerPeer("):
        assert env.get("LEDGER_URL") == "http://ledger:8085", env.get("LEDGER_URL")
        assert "LEDGER_VKEY" in str(env.get("LEDGER_VKEY")), f"{target} anchors in the ledger but gets no LEDGER_VKEY"


def test_client_scopes_match_the_stack(compose):
    """IDENTITY_CLIENTS in compose registers every service's client with the stack's scopes."""
    registered = {}
    for line in compose["services"]["identity"]["environment"]["IDENTITY_CLIENTS"].splitlines():
        # id:${SECRET…}:role:scope scope…  (the secret is a ${…} substitution with a colon inside)
        match = re.fullmatch(r"(\$\{SCRIPT_CLIENT_ID:-scripts\}|[a-z]+):\$\{[^}]+\}:(service|system):(.+)", line.strip())
        assert match, f"unexpected IDENTITY_CLIENTS line: {line}"
        registered[match.group(1)] = set(match.group(3).split())
    stack = stack_client_scopes()
    assert '"$SCRIPT_CLIENT"' in stack and len(stack) >= len(repo_services()) + 1, stack
    for name, scopes in stack.items():
        key = "${SCRIPT_CLIENT_ID:-scripts}" if name == '"$SCRIPT_CLIENT"' else name
        assert registered.get(key) == scopes, f"client {name}: compose registers {registered.get(key)}, the stack {scopes}"


@pytest.mark.parametrize("target", repo_services())
def test_image_builds_and_ships_every_service(target):
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    products = re.findall(r'^ARG PRODUCTS="([^"]+)"', dockerfile, re.M)
    assert len(products) == 2 and products[0] == products[1], "the build and runtime stages must list the same PRODUCTS"
    assert f"medledger-{target.lower()}" in products[0].split(), products[0]
    if (REPO / "Services" / target / "Resources").is_dir():
        bundles = re.search(r'^ARG BUNDLES="([^"]+)"', dockerfile, re.M)
        assert bundles and f"MedLedger_{target}" in bundles.group(1).split(), f"MedLedger_{target} missing from BUNDLES"
