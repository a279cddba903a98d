"""Identity's login defences, black-box: lockout after LOCKOUT_THRESHOLD (5) consecutive
failures whose answers never reveal whether an account exists, exists but is locked or
disabled; unlocking by an admin; and the login history, which identity delivers to the audit
service and admins read there as a FHIR Bundle of AuditEvents.

Oracle for the FHIR shapes: fhirkit-rs (imports as `fhirkit`), a FHIR R4 structure validator
independent of the service.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timezone

import fhirkit
import identitylib as idl
import requests
from e2e_support import assert_problem

LOCKOUT_THRESHOLD = 5  # the stack's identity runs with the default
LOCKOUT_SECONDS = 900  # default
LOCK_RE = re.compile(r"\block(ed|out)?\b", re.I)  # "lock", "locked", "lockout"; not "unlock"
LOGIN_CODE, LOGOUT_CODE = "110122", "110123"  # DICOM subtypes of 110114 User Authentication
USER_SYSTEM = "urn:medledger:identity:user"  # identity's accounts as AuditEvent agent identifiers
DELIVERY_WAIT = 30  # seconds: identity's outbox delivers at once, but the audit service may lag


def _unknown_username() -> str:
    return f"e2e.nobody.{uuid.uuid4().hex[:16]}"


def _fail_logins(identity, acct: idl.Account, n: int, expected: tuple | None = None) -> None:
    for i in range(n):
        r = identity.login(acct.username, acct.password + "-wrong")
        assert_problem(r, 401, f"wrong password #{i + 1}")
        if expected is not None:
            assert idl.problem_fingerprint(r) == expected, f"wrong password #{i + 1} answers unlike an unknown user"


def _locked_until(identity, admin, acct) -> datetime | None:
    r = identity.get(f"/users/{acct.id}", token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    value = r.json()["lockedUntil"]
    return datetime.fromisoformat(value) if value is not None else None


def fhir_errors(resource: dict) -> list[str]:
    return [str(i) for i in fhirkit.validate(resource) if i.severity == "error"]


# --------------------------------------------------------------------------- lockout


def test_lockout_answers_like_an_unknown_user(identity, admin, users):
    acct = users.staff("doctor", label="lock")
    unknown = identity.login(_unknown_username(), idl.strong_password())
    assert_problem(unknown, 401, "unknown user")
    expected = idl.problem_fingerprint(unknown)
    unknown_grant = idl.assert_oauth_error(identity.password_grant(_unknown_username(), idl.strong_password()), "invalid_grant")

    _fail_logins(identity, acct, LOCKOUT_THRESHOLD, expected)
    # Locked now: the right password fails exactly as an unknown user does, at both endpoints.
    r = identity.login(acct.username, acct.password)
    assert_problem(r, 401, "right password while locked")
    assert idl.problem_fingerprint(r) == expected, "a locked account answers unlike an unknown user"
    assert "Retry-After" not in r.headers, r.headers
    grant = identity.password_grant(acct.username, acct.password)
    assert idl.assert_oauth_error(grant, "invalid_grant") == unknown_grant

    # The admin sees the lock, about LOCKOUT_SECONDS ahead.
    until = _locked_until(identity, admin, acct)
    assert until is not None, "lockedUntil should be set after the lockout"
    ahead = (until - datetime.now(timezone.utc)).total_seconds()
    assert LOCKOUT_SECONDS - 120 < ahead <= LOCKOUT_SECONDS + 60, f"lockedUntil {until} is {ahead:.0f} s ahead"

    # Unlocked by the admin: the right password works again.
    r = identity.patch(f"/users/{acct.id}", {"unlock": True}, token=admin.token)
    assert r.status_code == 200 and r.json()["lockedUntil"] is None, idl.describe(r)
    ts = identity.login_tokens(acct.username, acct.password)
    assert ts.scopes == idl.ROLE_SCOPES["doctor"]


def test_only_consecutive_failures_lock(identity, admin, users):
    acct = users.staff("technologist", label="consec")
    for _ in range(2):
        _fail_logins(identity, acct, LOCKOUT_THRESHOLD - 1)
        identity.login_tokens(acct.username, acct.password)  # a success resets the count
    assert _locked_until(identity, admin, acct) is None


def test_token_endpoint_failures_count_and_a_reset_unlocks(identity, admin, users):
    acct = users.staff("receptionist", label="grantlock")
    for _ in range(LOCKOUT_THRESHOLD):
        idl.assert_oauth_error(identity.password_grant(acct.username, acct.password + "-wrong"), "invalid_grant")
    assert_problem(identity.login(acct.username, acct.password), 401, "locked by failures at /auth/token")
    assert _locked_until(identity, admin, acct) is not None
    new = idl.remember_password(idl.strong_password())
    r = identity.patch(f"/users/{acct.id}", {"password": new}, token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    assert r.json()["lockedUntil"] is None and r.json()["mustChangePassword"] is True, r.json()
    ts = identity.login_tokens(acct.username, new)
    assert ts.scopes == {idl.PASSWORD_CHANGE_SCOPE}, ts.scope


def test_disabled_account_answers_like_an_unknown_user(identity, admin, users):
    acct = users.staff("doctor", label="off")
    r = identity.patch(f"/users/{acct.id}", {"disabled": True}, token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    unknown = identity.login(_unknown_username(), acct.password)
    disabled = identity.login(acct.username, acct.password)
    assert_problem(disabled, 401, "disabled account")
    assert idl.problem_fingerprint(disabled) == idl.problem_fingerprint(unknown)
    a = idl.assert_oauth_error(identity.password_grant(acct.username, acct.password), "invalid_grant")
    b = idl.assert_oauth_error(identity.password_grant(_unknown_username(), acct.password), "invalid_grant")
    assert a == b


# --------------------------------------------------------------------------- login history


def _text(ev: dict) -> str:
    """The event without who/where (which name the user and the service), for classification."""
    return json.dumps({k: v for k, v in ev.items() if k not in ("agent", "source")}).lower()


def _codes(ev: dict) -> set[str]:
    codings = [ev.get("type") or {}, *(ev.get("subtype") or [])]
    return {c.get("code") for c in codings if isinstance(c, dict)}


def _is_logout(ev: dict) -> bool:
    return LOGOUT_CODE in _codes(ev) or "logout" in _text(ev)


def _is_lockout(ev: dict) -> bool:
    return bool(LOCK_RE.search(_text(ev)))


def _is_login(ev: dict) -> bool:
    return not _is_logout(ev) and (LOGIN_CODE in _codes(ev) or "login" in _text(ev))


def _history(audit: str, token: str, user_id: str, **params) -> requests.Response:
    """An account's login history at the audit service: the events it is the agent of, newest first."""
    query = {"agent:identifier": f"{USER_SYSTEM}|{user_id}", "_sort": "-date", "_count": "100", **params}
    return requests.get(f"{audit}/fhir/AuditEvent", params=query, timeout=30,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})  # fmt: skip


def _events(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == "AuditEvent"]


def _delivered_history(audit: str, token: str, user_id: str, done, what: str) -> dict:
    """The history's Bundle once done(events) holds: identity delivers asynchronously."""
    deadline = time.monotonic() + DELIVERY_WAIT
    while True:
        r = _history(audit, token, user_id)
        assert r.status_code == 200, idl.describe(r)
        if done(_events(r.json())) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    events = _events(r.json())
    assert done(events), f"{what} not in the audit service's history after {DELIVERY_WAIT} s: {[_summary(ev) for ev in events]}"
    return r.json()


def _summary(ev: dict) -> tuple:
    return ev.get("outcome"), sorted(c for c in _codes(ev) if c), ev.get("outcomeDesc")


def test_login_history_is_a_bundle_of_audit_events(identity, admin, users, audit_url):
    acct = users.staff("technologist", label="hist")
    identity.login_tokens(acct.username, acct.password)  # success
    _fail_logins(identity, acct, LOCKOUT_THRESHOLD)  # failures, then the lockout
    assert_problem(identity.login(acct.username, acct.password), 401, "locked")
    r = identity.patch(f"/users/{acct.id}", {"unlock": True}, token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    last = identity.login_tokens(acct.username, acct.password)  # success
    assert identity.logout(last.access_token).status_code == 204  # logout

    bundle = _delivered_history(audit_url, admin.token, acct.id, lambda evs: any(_is_logout(ev) for ev in evs), "the logout")
    assert not fhir_errors(bundle), f"the Bundle is not valid FHIR R4: {fhir_errors(bundle)}"
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", {k: bundle.get(k) for k in ("resourceType", "type")}
    events = _events(bundle)
    if "total" in bundle:
        assert bundle["total"] == len(events), (bundle["total"], len(events))

    problems = []
    for i, ev in enumerate(events):
        errs = fhir_errors(ev)
        if errs:
            problems.append(f"entry {i}: {errs}")
        text = json.dumps(ev)
        if acct.id not in text and acct.username not in text:
            problems.append(f"entry {i} does not name the user: {text[:300]}")
    assert not problems, "\n".join(problems)

    recorded = [datetime.fromisoformat(ev["recorded"]) for ev in events]
    assert recorded == sorted(recorded, reverse=True), "login history must be newest first"

    failures = [ev for ev in events if ev.get("outcome") in ("4", "8", "12") and not _is_logout(ev)]
    successes = [ev for ev in events if ev.get("outcome") == "0" and _is_login(ev) and not _is_lockout(ev)]
    lockouts = [ev for ev in events if _is_lockout(ev)]
    logouts = [ev for ev in events if _is_logout(ev)]
    summary = [_summary(ev) for ev in events]
    assert len(failures) >= LOCKOUT_THRESHOLD, f"{len(failures)} failed logins in {summary}"
    assert len(successes) >= 2, f"{len(successes)} successful logins in {summary}"
    assert lockouts, f"no lockout event in {summary}"
    assert len(logouts) == 1, f"the logout, delivered exactly once: {summary}"
    # Newest first: the logout was the last thing (ties in `recorded` may come in any order).
    newest = [ev for ev, t in zip(events, recorded) if t == recorded[0]]
    assert any(_is_logout(ev) for ev in newest), f"the newest event should be the logout: {summary[:3]}"

    # _count bounds the page to the newest events.
    r2 = _history(audit_url, admin.token, acct.id, _count="2")
    assert r2.status_code == 200, idl.describe(r2)
    page = _events(r2.json())
    assert len(page) == 2 and all(ev in events for ev in page), [_summary(ev) for ev in page]
    assert min(datetime.fromisoformat(ev["recorded"]) for ev in page) >= recorded[2]


def test_login_history_is_for_admins(identity, admin, users, audit_url):
    tech = users.staff("technologist")
    patient = users.patient()
    desk = users.receptionist()
    # Staff other than admins see no audit events at all.
    for who, token, target in (
        ("receptionist on a patient", users.token(desk), patient.id),
        ("receptionist on itself", users.token(desk), desk.id),
        ("technologist on itself", users.token(tech), tech.id),
    ):
        r = _history(audit_url, token, target)
        assert r.status_code == 403 and r.json().get("resourceType") == "OperationOutcome", f"{who}: {idl.describe(r)}"
    # An admin reads any account's history, patients' too; an unknown account has none.
    r = _history(audit_url, admin.token, str(uuid.uuid4()))
    assert r.status_code == 200 and not _events(r.json()), idl.describe(r)
    history = _delivered_history(audit_url, admin.token, tech.id, lambda evs: any(_is_login(ev) for ev in evs), "the technologist's login")
    assert not fhir_errors(history), fhir_errors(history)
    logged_in = lambda evs: any(ev.get("outcome") == "0" and _is_login(ev) for ev in evs)  # noqa: E731
    history = _delivered_history(audit_url, admin.token, patient.id, logged_in, "the patient's login with its one-time password")
    assert not fhir_errors(history), fhir_errors(history)
    # A patient sees only events about themselves, never another account's (found nothing, or refused).
    r = _history(audit_url, users.token(patient), tech.id)
    if r.status_code != 403:
        assert r.status_code == 200 and not _events(r.json()), idl.describe(r)
