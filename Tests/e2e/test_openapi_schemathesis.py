"""The ledger, identity, records, consent and audit against their own OpenAPI documents, fuzzed by schemathesis
(pinned in requirements.txt: schemathesis==4.32.5), run through its CLI with bounded examples.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import recordslib as rl
from e2e_support import service_token as _service_token
import requests
import yaml

CHECKS = [
    "not_a_server_error",  # never a 5xx, whatever the input
    "response_schema_conformance",  # bodies match the documented schemas
    "content_type_conformance",  # Content-Type is one the document lists
    "status_code_conformance",  # every status returned is documented
    "ignored_auth",  # operations that declare security reject missing/invalid credentials
]
MAX_EXAMPLES = 25
TIMEOUT = 240  # seconds per schemathesis run; a bounded run normally needs well under two minutes
# One worker thread: with two, a run fails now and then with Python 3.11's "SystemError: AST
# constructor recursion depth mismatch" (cpython gh-106905: the AST conversion state is shared
# between threads, and Hypothesis parses module sources to describe lambdas). Seen on identity's
# and, more often, on records' documents.
WORKERS = 1
HTTP_TIMEOUT = 60

CONTRACT_PATHS = ["/entries", "/checkpoint", "/proofs/inclusion", "/proofs/consistency"]
IDENTITY_CONTRACT_PATHS = [
    "/auth/login", "/auth/token", "/auth/logout",
    "/users", "/users/me", "/users/me/password", "/users/{id}",
    "/clients", "/clients/{id}", "/clients/{id}/secret",
    "/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/smart-configuration",
    "/health/live", "/health/ready", "/metrics", "/openapi.yaml",
]  # fmt: skip
# A stack left at identity's default LOGIN_ADDRESS_LIMIT throttles 127.0.0.1 after the fuzzed
# failed logins; deploy/local/test raises the limit, a hand-started stack may not. Longer than
# the default LOGIN_ADDRESS_WINDOW_SECONDS (300).
LOGIN_PATIENCE = 330


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("st")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("st") or shutil.which("schemathesis")
    assert found, "schemathesis CLI not found in the test virtualenv (pip install -r Tests/e2e/requirements.txt)"
    return [found]


def _run_schemathesis(base_url: str, report_dir: Path, *extra: str, reuse_responses: bool = True,
                      config_toml: str = "") -> str:  # fmt: skip
    """One bounded `st run` against base_url's own /openapi.yaml; extra = auth and filters.
    reuse_responses=False stops schemathesis from feeding values seen in responses (e.g. ids
    from a listing) into later requests' parameters. config_toml: more schemathesis.toml
    (e.g. dictionaries of known ids)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    config = []
    if not reuse_responses:
        config_toml += "".join(
            f"[phases.{phase}.extra-data-sources]\nresponses = false\n" for phase in ("examples", "coverage", "fuzzing")
        )
    if config_toml:
        toml = report_dir / "schemathesis.toml"
        toml.write_text(config_toml)
        config = ["--config-file", str(toml)]
    cmd = _schemathesis() + config + [
        "run", f"{base_url}/openapi.yaml",
        "--url", base_url,
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", str(WORKERS),
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-dir", str(report_dir),
        "--generation-database", "none",
        "--no-color",
        *extra,
    ]  # fmt: skip
    env = dict(os.environ, NO_COLOR="1")
    try:
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=report_dir)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"schemathesis exceeded {TIMEOUT} s:\n{(e.stdout or b'')[-4000:]!r}") from None
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"schemathesis exit {p.returncode}:\n{out[-12000:]}"
    # Guard against a vacuous pass (e.g. an empty document or a filter matching nothing).
    assert "passed" in out.lower() or "✅" in out, out[-3000:]
    return out


def _bearer(token: str) -> list[str]:
    return ["--header", f"Authorization: Bearer {token}"]


# --------------------------------------------------------------------------- ledger


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
    _run_schemathesis(stack["LEDGER_URL"], tmp_path, *_bearer(ledger.service_token))


# --------------------------------------------------------------------------- identity


def _stack_value(stack: dict[str, str], key: str) -> str:
    if not stack.get(key):
        pytest.fail(f"STACK_ENV lacks {key} (written by deploy/local/stack up when identity runs)", pytrace=False)
    return stack[key]


def _retry_after(r: requests.Response) -> float:
    try:
        return max(1.0, float(r.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def _login(base: str, username: str, password: str, patience: float = LOGIN_PATIENCE) -> requests.Response:
    """POST /auth/login; a 429 (this address throttled) is waited out per Retry-After while
    `patience` seconds last. Returns the last response."""
    deadline = time.monotonic() + patience
    while True:
        r = requests.post(f"{base}/auth/login", json={"username": username, "password": password}, timeout=HTTP_TIMEOUT)
        if r.status_code != 429 or time.monotonic() + _retry_after(r) > deadline:
            return r
        time.sleep(_retry_after(r))


def _token(base: str, username: str, password: str) -> str:
    r = _login(base, username, password)
    assert r.status_code == 200, f"login as {username}: {r.status_code} {r.text[:300]}"
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def identity_url(stack):
    """The stack's identity (ready), and afterwards no login throttle left behind for later tests."""
    base = _stack_value(stack, "IDENTITY_URL").rstrip("/")
    try:
        r = requests.get(f"{base}/health/ready", timeout=10)
    except requests.RequestException as e:
        pytest.fail(f"identity at {base} is not reachable: {e}", pytrace=False)
    if r.status_code != 200:
        pytest.fail(f"identity at {base} is not ready: {r.status_code} {r.text[:200]}", pytrace=False)
    yield base
    # Fuzzed failed logins may have throttled this address (see LOGIN_PATIENCE); best effort.
    try:
        _login(base, stack.get("ADMIN_USER", ""), stack.get("ADMIN_PASSWORD", ""))
    except requests.RequestException:
        pass


@pytest.fixture(scope="module")
def admin_token(identity_url, stack) -> str:
    return _token(identity_url, _stack_value(stack, "ADMIN_USER"), _stack_value(stack, "ADMIN_PASSWORD"))


def _contract_paths(base_url: str, service: str, required: list[str]) -> dict:
    """The paths of base_url's own OpenAPI 3.1 document, after checking it lists `required`."""
    r = requests.get(f"{base_url}/openapi.yaml", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.status_code
    doc = yaml.safe_load(r.text)
    assert str(doc.get("openapi", "")).startswith("3.1"), doc.get("openapi")
    paths = doc.get("paths", {})
    missing = [p for p in required if p not in paths]
    assert not missing, f"{missing} missing from {service}'s openapi.yaml (has {sorted(paths)})"
    return paths


def test_identity_openapi_document_describes_the_contract(identity_url):
    paths = _contract_paths(identity_url, "identity", IDENTITY_CONTRACT_PATHS)
    assert "patch" in paths["/users/{id}"] and "patch" in paths["/clients/{id}"], "PATCH operations missing"


def test_identity_schemathesis_fuzz_as_admin(identity_url, admin_token, tmp_path):
    """Everything the bootstrap admin's bearer token reaches, except:
    - POST /auth/logout: would end the admin's session, so the rest of the run would see 401s;
    - POST /users/me/password: a wrong currentPassword counts as a failed login and would lock
      the bootstrap admin out (fuzzed below with a throwaway account instead);
    - /auth/login and /auth/token: they take credentials, not this token (fuzzed below).
    Response reuse is off: schemathesis would otherwise take ids from GET /users/me, GET /users
    and GET /clients and PATCH them, resetting the bootstrap admin's password (its own disable
    and role change are refused, 409) or disabling accounts and rotating client secrets that
    other tests of this run hold. Ids then come from the document (an unknown example UUID, the
    example client `ehr-example` this run creates) or are generated, never an existing account."""
    _run_schemathesis(
        identity_url, tmp_path,
        *_bearer(admin_token),
        "--exclude-tag", "auth",
        "--exclude-operation-id", "changeMyPassword",
        reuse_responses=False,
    )  # fmt: skip


def test_identity_schemathesis_fuzz_own_password(identity_url, admin_token, tmp_path):
    """POST /users/me/password as a throwaway staff account: its wrong current passwords lock
    only that account."""
    username = f"e2e-fuzz-{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(24)  # 32 characters: at 20+ the policy needs no character mix
    r = requests.post(
        f"{identity_url}/users",
        json={"username": username, "password": password, "role": "technologist", "name": "schemathesis throwaway"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 201, f"creating {username}: {r.status_code} {r.text[:300]}"
    _run_schemathesis(
        identity_url, tmp_path,
        *_bearer(_token(identity_url, username, password)),
        "--include-operation-id", "changeMyPassword",
    )  # fmt: skip


def test_identity_schemathesis_fuzz_credentials(identity_url, stack, tmp_path):
    """/auth/login and /auth/token with the stack's script client as HTTP Basic client
    authentication, so client_credentials answers real tokens (and the password grant's client
    check passes). The only real username sent is the examples' "jdoe", an account the admin
    run created; random ones practically never hit another test's account, so no other account
    gets locked."""
    client = f"{_stack_value(stack, 'SERVICE_CLIENT_ID')}:{_stack_value(stack, 'SERVICE_CLIENT_SECRET')}"
    _run_schemathesis(
        identity_url, tmp_path,
        "--auth", client,
        "--include-operation-id", "login",
        "--include-operation-id", "requestToken",
    )  # fmt: skip


# --------------------------------------------------------------------------- records

RECORDS_CONTRACT_PATHS = [
    "/fhir/metadata", "/fhir/.well-known/smart-configuration",
    *(f"/fhir/{t}{tail}" for t in rl.TYPES
      for tail in ("", "/_search", "/_history", "/{id}", "/{id}/_history", "/{id}/_history/{vid}")),
    "/health/live", "/health/ready", "/metrics", "/openapi.yaml",
]  # fmt: skip
# How often a generated id, body reference or cursor is replaced by a real one: the rest stay
# generated, so unknown ids (404) and malformed values are fuzzed too.
KNOWN_VALUE_PROBABILITY = 0.5


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def _records_config(ids: dict[str, str], patient: str, practitioner: str, cursors: list[str]) -> str:
    """schemathesis.toml that lets part of the generated requests name resources that exist:
    ids[type] in `{id}` (and always in PUT bodies, whose id must equal the URL's), `patient` in
    report subjects and Binary security contexts (else nearly every create is a 422),
    `practitioner` in generalPractitioner, cursors this server issued in `_cursor`, and
    If-None-Exist criteria that match nothing or ids[type] (a generated one is nearly always a 400).
    The coverage phase, which these values do not reach, is off for creates and updates: its
    thousands of bodies per operation would nearly all stop at the same 412 (the example's
    If-None-Exist), 422 (the example's unknown subject) or 400 (an id unlike the URL's), and
    take most of the time budget; the examples and fuzzing phases still send those bodies."""
    dictionaries = {
        **{t.lower(): [i] for t, i in ids.items()},
        "vid": ["1", "2"],
        "patient_ref": [f"Patient/{patient}"],
        "practitioner_ref": [f"Practitioner/{practitioner}"],
        "cursor": cursors,
        **{f"if_none_exist_{t.lower()}": [f"_id={uuid.uuid4()}"] + ([f"_id={ids[t]}"] if t in ids else [])
           for t in rl.TYPES},  # fmt: skip
    }
    references = {
        "Patient": {"body.generalPractitioner[*].reference": "practitioner_ref"},
        "DiagnosticReport": {"body.subject.reference": "patient_ref"},
        "Binary": {"body.securityContext.reference": "patient_ref", "header.X-Security-Context": "patient_ref"},
    }
    cursor = {"query._cursor": "cursor", "body._cursor": "cursor"}
    out = [f"[dictionaries.{name}]\nvalues = {_toml_list(values)}\n" for name, values in dictionaries.items() if values]
    for t in rl.TYPES:
        own = {"path.id": t.lower()} if t in ids else {}
        per_path = {  # schemathesis applies the first [[operations]] that matches, so one per path
            f"/fhir/{t}": {**cursor, **references.get(t, {}), "header.If-None-Exist": f"if_none_exist_{t.lower()}"},
            f"/fhir/{t}/_search": cursor,
            f"/fhir/{t}/_history": cursor,
            f"/fhir/{t}/{{id}}": {**own, **references.get(t, {})},
            f"/fhir/{t}/{{id}}/_history": {**own, **cursor},
            f"/fhir/{t}/{{id}}/_history/{{vid}}": {**own, "path.vid": "vid"},
            f"/fhir/{t}/{{id}}/$verify": own,
            f"/fhir/{t}/{{id}}/_history/{{vid}}/$verify": {**own, "path.vid": "vid"},
        }
        for path, params in per_path.items():
            bound = [f'"{key}" = {{ dictionary = "{name}", probability = {KNOWN_VALUE_PROBABILITY} }}'
                     for key, name in params.items() if dictionaries.get(name)]  # fmt: skip
            if path.endswith("{id}") and t in ids:
                bound.append(f'"body.id" = "{ids[t]}"')  # a literal: a dictionary only replaces an id the body has
            if bound:
                out.append(f'[[operations]]\ninclude-path = "{path}"\nparameters = {{ {", ".join(bound)} }}\n')
    writes = "^(POST|PUT) /fhir/[A-Za-z]+(/\\{id\\})?$"
    out.append(f"[[operations]]\ninclude-name-regex = '{writes}'\nphases.coverage.enabled = false\n")
    return "\n".join(out)


# Where fuzzed Subscriptions deliver: the discard port of this machine, closed, so a delivery fails
# at once and no generated endpoint (an https URL of any host) is ever contacted.
FUZZ_ENDPOINT = "http://127.0.0.1:9/schemathesis"


def _subscription_config(subscription: str) -> str:
    """schemathesis.toml for the Subscription operations: part of the requests name `subscription`
    (and PUT bodies always carry its id), and every generated body's endpoint is FUZZ_ENDPOINT.
    Creates and updates skip the coverage phase, as the other types' do (the endpoint is not
    replaced there). Goes before _records_config's: the first [[operations]] that matches applies."""
    known = f'{{ dictionary = "subscription", probability = {KNOWN_VALUE_PROBABILITY} }}'
    endpoint = f'"body.channel.endpoint" = "{FUZZ_ENDPOINT}"'
    return "\n".join([
        f'[dictionaries.subscription]\nvalues = ["{subscription}"]\n',
        f"[[operations]]\ninclude-name-regex = '^POST /fhir/Subscription$'\nphases.coverage.enabled = false\n"
        f"parameters = {{ {endpoint} }}\n",
        f"[[operations]]\ninclude-name-regex = '^PUT /fhir/Subscription/\\{{id\\}}$'\nphases.coverage.enabled = false\n"
        f'parameters = {{ "path.id" = {known}, "body.id" = "{subscription}", {endpoint} }}\n',
        *(f'[[operations]]\ninclude-path = "{path}"\nparameters = {{ "path.id" = {known} }}\n'
          for path in ("/fhir/Subscription/{id}", "/fhir/Subscription/{id}/$status")),
    ])  # fmt: skip


def _delete_subscriptions(records: rl.Records, token: str) -> None:
    """Deletes every Subscription of the caller (the fuzzed ones): none lingers in the stack."""
    for _ in range(20):  # pages of 1000; a bounded run creates far fewer
        r = records.search("Subscription", {"_count": "1000"}, token)
        entries = rl.assert_bundle(r, "searchset", what="the fuzz run's Subscriptions").get("entry", [])
        if not entries:
            return
        for e in entries:
            r = records.delete("Subscription", e["resource"]["id"], token)
            assert r.status_code == 204, f"deleting Subscription/{e['resource']['id']}: {r.status_code} {r.text[:300]}"
    pytest.fail("the fuzz run's Subscriptions do not all go away")


def _records_cursors(records: rl.Records, token: str) -> list[str]:
    """A search cursor and a history cursor this server issued (from `next` links of one-entry pages)."""
    cursors = []
    for path in ("/Practitioner", "/Practitioner/_history"):
        r = records.get(path, token, params={"_count": "1"})
        next_url = rl.link(rl.assert_bundle(r, "history" if "_history" in path else "searchset", what=path), "next")
        cursors += [v for k, v in rl.query_of(next_url or "") if k == "_cursor"]
    return cursors


def test_records_openapi_document_describes_the_contract(records):
    paths = _contract_paths(records.public, "records", RECORDS_CONTRACT_PATHS)
    for t in rl.TYPES:
        assert {"get", "post"} <= set(paths[f"/fhir/{t}"]), f"/fhir/{t}: {sorted(paths[f'/fhir/{t}'])}"
        assert {"get", "put", "delete"} <= set(paths[f"/fhir/{t}/{{id}}"]), f"/fhir/{t}/{{id}}"
        assert "post" in paths[f"/fhir/{t}/_search"], f"/fhir/{t}/_search"


def test_records_schemathesis_fuzz_as_trusted_ehr(records, actors, tmp_path):
    """Every operation as a trusted EHR client with system/{type}.cruds on all four types (the
    widest access records grants). It sees, and could update or delete, every resource of the
    stack, so response reuse is off (schemathesis would otherwise feed ids from searches into
    PUT and DELETE); ids come from resources made here for this run, or are generated. The
    Subscriptions it makes deliver nowhere (FUZZ_ENDPOINT) and are deleted afterwards."""
    ehr = actors.ehr(rl.ALL_SYSTEM_SCOPES, trusted=True, name="E2E schemathesis EHR")
    tok = ehr.token
    prac_ref = records.must_create("Practitioner", rl.practitioner_body(), tok)["id"]
    pat_ref = records.must_create("Patient", rl.patient_body(gp=f"Practitioner/{prac_ref}"), tok)["id"]
    binary = records.must_create("Binary", rl.binary_json(f"Patient/{pat_ref}", b"%PDF-1.4 fuzz"), tok)["id"]
    report = rl.report_body(f"Patient/{pat_ref}", status="final", presented=[{"url": f"Binary/{binary}"}])
    targets = {
        "Patient": records.must_create("Patient", rl.patient_body(gp=f"Practitioner/{prac_ref}"), tok)["id"],
        "Practitioner": records.must_create("Practitioner", rl.practitioner_body(), tok)["id"],
        "DiagnosticReport": records.must_create("DiagnosticReport", report, tok)["id"],
        "Binary": binary,
    }
    # Matches no report (an unknown _id): nothing is ever delivered to it.
    subscription = records.must_create("Subscription", {
        "resourceType": "Subscription", "status": "requested", "reason": "schemathesis",
        "criteria": f"DiagnosticReport?_id={uuid.uuid4()}",
        "channel": {"type": "rest-hook", "endpoint": FUZZ_ENDPOINT, "payload": "application/fhir+json"},
    }, tok)["id"]  # fmt: skip
    try:
        _run_schemathesis(
            records.public, tmp_path,
            *_bearer(tok),
            config_toml=_subscription_config(subscription)
            + _records_config(targets, pat_ref, prac_ref, _records_cursors(records, tok)),
            reuse_responses=False,
        )  # fmt: skip
    finally:
        _delete_subscriptions(records, tok)


def test_records_schemathesis_fuzz_as_doctor(records, actors, rec_receptionist, tmp_path):
    """Patient, DiagnosticReport and Binary operations as a new doctor, whose compartment holds
    only what this test makes: one assigned Patient with a report and a Binary (Practitioners,
    which doctors only read, are left to the other runs). The doctor cannot delete, and cannot
    write Patients, so response reuse stays on."""
    doctor = actors.doctor()
    tok = doctor.token
    patient = records.must_create("Patient", rl.patient_body(gp=doctor.fhir_user), rec_receptionist.token)["id"]
    binary = records.must_create("Binary", rl.binary_json(f"Patient/{patient}", b"%PDF-1.4 fuzz"), tok)["id"]
    report = rl.report_body(f"Patient/{patient}", presented=[{"url": f"Binary/{binary}"}])
    report_id = records.must_create("DiagnosticReport", report, tok)["id"]
    ids = {"Patient": patient, "DiagnosticReport": report_id, "Binary": binary}
    _run_schemathesis(
        records.public, tmp_path,
        *_bearer(tok),
        "--include-tag", "Patient", "--include-tag", "DiagnosticReport", "--include-tag", "Binary",
        config_toml=_records_config(ids, patient, doctor.id, _records_cursors(records, tok)),
    )  # fmt: skip


def test_records_schemathesis_fuzz_as_receptionist(records, rec_receptionist, rec_admin, tmp_path):
    """The four types as a receptionist: Patients (all of them, every interaction), Practitioners
    (read and search only) and 403s for reports and Binaries. Receptionists see and may delete
    every Patient of the stack, so response reuse is off, as for the EHR client."""
    tok = rec_receptionist.token
    practitioner = records.must_create("Practitioner", rl.practitioner_body(), rec_admin.token)["id"]
    patient = records.must_create("Patient", rl.patient_body(gp=f"Practitioner/{practitioner}"), tok)["id"]
    ids = {"Patient": patient, "Practitioner": practitioner}
    _run_schemathesis(
        records.public, tmp_path,
        *_bearer(tok),
        *(arg for tag in rl.TYPES for arg in ("--include-tag", tag)),
        config_toml=_records_config(ids, patient, practitioner, _records_cursors(records, tok)),
        reuse_responses=False,
    )  # fmt: skip


# --------------------------------------------------------------------------- consent

CONSENT_CONTRACT_PATHS = [
    "/fhir/metadata", "/fhir/Consent", "/fhir/Consent/_search", "/fhir/Consent/{id}", "/fhir/Consent/{id}/_history",
    "/fhir/Consent/{id}/_history/{vid}", "/decisions", "/grants", "/break-glass", "/break-glass/{id}",
    "/health/live", "/health/ready", "/metrics", "/openapi.yaml",
]  # fmt: skip


@pytest.fixture(scope="module")
def consent_url(stack):
    base = _stack_value(stack, "CONSENT_URL").rstrip("/")
    try:
        r = requests.get(f"{base}/health/ready", timeout=10)
    except requests.RequestException as e:
        pytest.fail(f"consent at {base} is not reachable: {e}", pytrace=False)
    if r.status_code != 200:
        pytest.fail(f"consent at {base} is not ready: {r.status_code} {r.text[:200]}", pytrace=False)
    return base


def consent_body(patient: str, actor: str) -> dict:
    """A consent consent accepts: `patient` lets `actor` read their lab reports."""
    return {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "actor": [{"role": {"text": "reader"}, "reference": {"reference": actor}}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
        },
    }  # fmt: skip


def _consent_config(patient: str, actor: str, consent: str | None = None, session: str | None = None) -> str:
    """schemathesis.toml that lets part of the generated requests name what exists: the
    patient and actor in bodies and queries (else nearly every write is a 422), a consent id
    (always in PUT bodies, whose id must equal the URL's) and a break-glass session id."""
    dictionaries = {"patient_ref": [patient], "actor_ref": [actor], "consent": [consent] if consent else [],
                    "session": [session] if session else [], "vid": ["1", "2"]}  # fmt: skip
    body_refs = {"body.patient.reference": "patient_ref", "body.provision.actor[*].reference.reference": "actor_ref"}
    per_path = {  # the first [[operations]] that matches applies, so one per path
        "/fhir/Consent": body_refs,
        "/fhir/Consent/{id}": {"path.id": "consent", **body_refs},
        "/fhir/Consent/{id}/_history": {"path.id": "consent"},
        "/fhir/Consent/{id}/_history/{vid}": {"path.id": "consent", "path.vid": "vid"},
        "/decisions": {"body.actor": "actor_ref", "body.patient": "patient_ref"},
        "/grants": {"query.actor": "actor_ref"},
        "/break-glass": {"body.patient": "patient_ref", "query.patient": "patient_ref"},
        "/break-glass/{id}": {"path.id": "session"},
    }
    out = [f"[dictionaries.{name}]\nvalues = {_toml_list(values)}\n" for name, values in dictionaries.items() if values]
    for path, params in per_path.items():
        bound = [f'"{key}" = {{ dictionary = "{name}", probability = {KNOWN_VALUE_PROBABILITY} }}'
                 for key, name in params.items() if dictionaries[name]]  # fmt: skip
        if path == "/fhir/Consent/{id}" and consent:
            bound.append(f'"body.id" = "{consent}"')
        if bound:
            out.append(f'[[operations]]\ninclude-path = "{path}"\nparameters = {{ {", ".join(bound)} }}\n')
    return "\n".join(out)


def test_consent_openapi_document_describes_the_contract(consent_url):
    paths = _contract_paths(consent_url, "consent", CONSENT_CONTRACT_PATHS)
    assert {"get", "post"} <= set(paths["/fhir/Consent"]), sorted(paths["/fhir/Consent"])
    assert {"get", "put", "delete"} <= set(paths["/fhir/Consent/{id}"]), sorted(paths["/fhir/Consent/{id}"])
    assert {"get", "post"} <= set(paths["/break-glass"]) and {"get", "delete"} <= set(paths["/break-glass/{id}"])


def test_consent_schemathesis_fuzz_as_patient(consent_url, actors, tmp_path):
    """The FHIR Consent operations as a new patient, who sees only their own consents (so
    response reuse stays on), with a doctor of the stack as the actor consents may name."""
    doctor = actors.doctor()
    patient = actors.patient()
    r = requests.post(f"{consent_url}/fhir/Consent", json=consent_body(patient.fhir_user, doctor.fhir_user),
                      headers={"Authorization": f"Bearer {patient.token}"}, timeout=HTTP_TIMEOUT)  # fmt: skip
    assert r.status_code == 201, f"creating a consent: {r.status_code} {r.text[:300]}"
    _run_schemathesis(
        consent_url, tmp_path,
        *_bearer(patient.token),
        "--include-tag", "Consent", "--include-tag", "capabilities", "--include-tag", "operations",
        config_toml=_consent_config(patient.fhir_user, doctor.fhir_user, consent=r.json()["id"]),
    )  # fmt: skip


def test_consent_schemathesis_fuzz_as_doctor(consent_url, actors, tmp_path):
    """Break-glass as a new doctor: sessions for an existing patient, listed and ended."""
    doctor = actors.doctor()
    patient = actors.patient()
    r = requests.post(f"{consent_url}/break-glass", json={"patient": patient.fhir_user, "reason": "schemathesis: a reason long enough"},
                      headers={"Authorization": f"Bearer {doctor.token}"}, timeout=HTTP_TIMEOUT)  # fmt: skip
    assert r.status_code == 201, f"breaking the glass: {r.status_code} {r.text[:300]}"
    _run_schemathesis(
        consent_url, tmp_path,
        *_bearer(doctor.token),
        "--include-tag", "break-glass",
        config_toml=_consent_config(patient.fhir_user, doctor.fhir_user, session=r.json()["id"]),
    )  # fmt: skip


def test_consent_schemathesis_fuzz_as_records(consent_url, stack, actors, tmp_path):
    """Decisions and grant lists with the stack's script client, which holds
    medledger/consent.decide as records does."""
    doctor = actors.doctor()
    patient = actors.patient()
    _run_schemathesis(
        consent_url, tmp_path,
        *_bearer(_service_token(stack)),
        "--include-tag", "decisions",
        config_toml=_consent_config(patient.fhir_user, doctor.fhir_user),
    )  # fmt: skip


# --------------------------------------------------------------------------- audit

AUDIT_CONTRACT_PATHS = [
    "/events", "/fhir/metadata", "/fhir/AuditEvent", "/health/live", "/health/ready", "/metrics", "/openapi.yaml",
]  # fmt: skip


def test_audit_openapi_document_describes_the_contract(audit_url):
    paths = _contract_paths(audit_url, "audit", AUDIT_CONTRACT_PATHS)
    assert "post" in paths["/events"], sorted(paths["/events"])
    assert "get" in paths["/fhir/AuditEvent"], sorted(paths["/fhir/AuditEvent"])


def test_audit_schemathesis_fuzz_as_admin(audit_url, admin_token, tmp_path):
    """Everything but the ingest as the bootstrap admin, who sees every event (reads only, so
    response reuse stays on)."""
    _run_schemathesis(audit_url, tmp_path, *_bearer(admin_token), "--exclude-path", "/events")


def test_audit_schemathesis_fuzz_as_patient(audit_url, actors, tmp_path):
    """The same as a new patient, who sees only the events about themselves."""
    _run_schemathesis(audit_url, tmp_path, *_bearer(actors.patient().token), "--exclude-path", "/events")


def test_audit_schemathesis_fuzz_ingest_as_a_service(audit_url, stack, tmp_path):
    """POST /events with the stack's script client, which holds medledger/audit.write as the
    services do. Whatever it accepts joins the stack's chain: bounded like every run here."""
    _run_schemathesis(audit_url, tmp_path, *_bearer(_service_token(stack)), "--include-path", "/events")
