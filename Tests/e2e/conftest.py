"""Fixtures for the black-box tests against a running stack.

The stack is started by `deploy/local/stack up`, which writes KEY=value lines to a
stack.env file; STACK_ENV names that file. All tests of a run share one ledger and one
identity, so tests never assume absolute indices or tree sizes (they compare against what
they appended themselves, and every entry carries a unique prefix: the `uniq` fixture), and
every account they create has a unique username.
Helpers that are not fixtures live in e2e_support.py, identitylib.py, ledgerlib.py,
recordslib.py and outboxlib.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import identitylib
import pytest
import recordslib
import requests
from e2e_support import Ledger, LocalIssuer, load_stack_env, service_token as _service_token, unique_name


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
    """HTTP client for the running ledger (writes with the script client's token from
    identity); fails the test if it is not ready."""
    client = Ledger(stack)
    _ready(client.base, "ledger")
    return client


def _ready(base: str, what: str) -> None:
    try:
        r = requests.get(base + "/health/ready", timeout=10)
    except requests.RequestException as e:
        pytest.fail(f"{what} at {base} is not reachable: {e}", pytrace=False)
    if r.status_code != 200:
        pytest.fail(f"{what} at {base} is not ready: {r.status_code} {r.text[:200]}", pytrace=False)


@pytest.fixture(scope="session")
def identity(stack) -> identitylib.Identity:
    """HTTP client for the running identity service; fails the test if it is not ready."""
    client = identitylib.Identity(stack["IDENTITY_URL"])
    _ready(client.base, "identity")
    return client


@pytest.fixture(scope="session")
def audit_url(stack) -> str:
    """The running audit service's base URL (AUDIT_URL); fails the test if it is not ready."""
    base = stack["AUDIT_URL"].rstrip("/")
    _ready(base, "audit")
    return base


@pytest.fixture
def service_token(stack, identity) -> str:
    """The stack's script client's access token (client_credentials at identity, cached per run)."""
    return _service_token(stack)


@pytest.fixture(scope="session")
def admin(stack, identity) -> identitylib.AdminSession:
    """The bootstrap admin (ADMIN_USER/ADMIN_PASSWORD); admin.token logs in on demand."""
    return identitylib.AdminSession(identity, stack["ADMIN_USER"], stack["ADMIN_PASSWORD"])


@pytest.fixture(scope="session")
def users(identity, admin) -> identitylib.Users:
    """Creates accounts with unique usernames: users.staff("doctor"), users.patient(), ..."""
    return identitylib.Users(identity, admin)


@pytest.fixture(scope="session")
def local_issuer(stack, tmp_path_factory) -> LocalIssuer:
    """A token issuer made in Python (Ed25519 key, JWKS file, PyJWT) for ledger processes the
    tests start themselves: put local_issuer.env() into their environment."""
    return LocalIssuer(tmp_path_factory.mktemp("local-issuer"), stack["IDENTITY_URL"])


@pytest.fixture
def uniq(request):
    """uniq("label") -> a string unique to this run, this test and this call."""
    return lambda label="x": unique_name(request.node.name, label)


# --------------------------------------------------------------------------- records (FHIR)


@pytest.fixture(scope="session")
def records(stack, identity) -> recordslib.Records:
    """FHIR client for the running records service (base RECORDS_URL/fhir; every JSON answer is
    checked by the fhirkit validator); fails the test if it is not ready."""
    client = recordslib.Records(stack)
    _ready(client.public, "records")
    return client


@pytest.fixture(scope="session")
def actors(records, identity, admin, users) -> recordslib.Actors:
    """Makes more actors: actors.doctor(), actors.patient(gp=doctor), actors.ehr(scopes, trusted)."""
    return recordslib.Actors(records, identity, admin, users)


@pytest.fixture(scope="session")
def rec_admin(actors) -> recordslib.Actor:
    """The bootstrap admin (user/Practitioner.cruds)."""
    return actors.admin()


@pytest.fixture(scope="session")
def rec_receptionist(actors) -> recordslib.Actor:
    return actors.receptionist()


@pytest.fixture(scope="session")
def rec_technologist(actors) -> recordslib.Actor:
    return actors.technologist()


@pytest.fixture(scope="session")
def rec_doctor(actors) -> recordslib.Actor:
    """A doctor whose Practitioner the admin created in records first (fhirUser=Practitioner/<id>)."""
    return actors.doctor()


@pytest.fixture(scope="session")
def rec_patient(actors, rec_doctor) -> recordslib.Actor:
    """A patient whose Patient a receptionist created with generalPractitioner = rec_doctor."""
    return actors.patient(gp=rec_doctor)


@pytest.fixture(scope="session")
def ehr_trusted(actors) -> recordslib.Actor:
    """A trusted EHR client (role system): system/Patient.rs system/DiagnosticReport.rs system/Binary.r."""
    return actors.ehr(recordslib.READ_SYSTEM_SCOPES, trusted=True, name="E2E trusted EHR")


@pytest.fixture(scope="session")
def ehr_untrusted(actors) -> recordslib.Actor:
    """The same scopes, not trusted: sees nothing until consent exists."""
    return actors.ehr(recordslib.READ_SYSTEM_SCOPES, trusted=False, name="E2E untrusted EHR")


@pytest.fixture(scope="session")
def ehr_writer(actors) -> recordslib.Actor:
    """A trusted EHR client with system/{type}.cruds on all four types (deletes reports)."""
    return actors.ehr(recordslib.ALL_SYSTEM_SCOPES, trusted=True, name="E2E writing EHR")
