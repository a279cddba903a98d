"""Identity's accounts, black-box: who may create, list, read and change whom; the one-time
password of new patients; disabling and password resets; validation (409/422/400/415).

Every identity answer in these tests also goes through identitylib.check_no_leaks: no
password or hash member, no bcrypt hash and none of this run's passwords in any body.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import identitylib as idl
import pytest
from e2e_support import assert_problem

MANAGER_ROLES = {"admin", "receptionist"}


def _time(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    assert t.tzinfo is not None, f"RFC 3339 timestamps carry an offset: {value!r}"
    return t


def assert_user(body: dict, *, username=None, role=None, fhir_user=idl._ANY, must_change=None, disabled=None) -> dict:
    missing = idl.USER_FIELDS - set(body)
    assert not missing, f"user JSON lacks {sorted(missing)}: {body}"
    assert idl.UUID_RE.match(body["id"]), body
    assert isinstance(body["name"], str) and body["name"], body
    assert body["fhirUser"] is None or isinstance(body["fhirUser"], str), body
    assert isinstance(body["disabled"], bool) and isinstance(body["mustChangePassword"], bool), body
    assert body["lockedUntil"] is None or _time(body["lockedUntil"]), body
    assert _time(body["updatedAt"]) >= _time(body["createdAt"]), body
    if username is not None:
        assert body["username"] == username, (body["username"], username)
    if role is not None:
        assert body["role"] == role, body
    if fhir_user is not idl._ANY:
        assert body["fhirUser"] == fhir_user, body
    if must_change is not None:
        assert body["mustChangePassword"] is must_change, body
    if disabled is not None:
        assert body["disabled"] is disabled, body
    return body


def list_users(identity, token: str, role: str | None = None, page: int = 100, max_pages: int = 100) -> list[dict]:
    """Every user the caller may list, page by page (bounded); checks the username order."""
    out: list[dict] = []
    for n in range(max_pages):
        params = {"limit": page, "offset": n * page}
        if role:
            params["role"] = role
        r = identity.get("/users", token=token, params=params)
        assert r.status_code == 200, idl.describe(r)
        batch = r.json()["users"]
        assert len(batch) <= page, (len(batch), page)
        out += batch
        if len(batch) < page:
            names = [u["username"] for u in out]
            assert names == sorted(names), "GET /users is not ordered by username"
            return out
    pytest.fail(f"more than {page * max_pages} users to list; is this a long-lived stack?", pytrace=False)


# --------------------------------------------------------------------------- who creates whom


@pytest.mark.parametrize("role", ["doctor", "receptionist", "technologist", "admin"])
def test_admin_creates_staff_and_admins(identity, admin, users, role):
    r = users.create(admin.token, role)
    assert r.status_code == 201, idl.describe(r)
    sent = r.request_body
    body = assert_user(
        r.json(), username=sent["username"], role=role, fhir_user=sent.get("fhirUser"), must_change=False, disabled=False
    )
    assert body["name"] == sent["name"] and body["lockedUntil"] is None, body
    location = r.headers.get("Location", "")
    assert location.endswith(f"/users/{body['id']}"), f"Location: {location!r}"
    got = identity.get(f"/users/{body['id']}", token=admin.token)
    assert got.status_code == 200, idl.describe(got)
    assert {k: v for k, v in got.json().items() if k != "updatedAt"} == {k: v for k, v in body.items() if k != "updatedAt"}
    # The new account logs in with its role's scopes at once (staff get no one-time password).
    ts = identity.login_tokens(body["username"], r.request_password)
    assert ts.scopes == idl.ROLE_SCOPES[role], ts.scope
    assert ts.claims["role"] == role and ts.claims["sub"] == body["id"], ts.claims
    if sent.get("fhirUser"):
        assert ts.claims["fhirUser"] == sent["fhirUser"], ts.claims


def test_admin_cannot_create_patients(admin, users):
    assert_problem(users.create(admin.token, "patient"), 403, "admin creating a patient")


def test_receptionist_creates_patients_only(identity, users):
    token = users.receptionist_token()
    r = users.create(token, "patient")
    assert r.status_code == 201, idl.describe(r)
    body = assert_user(r.json(), role="patient", fhir_user=r.request_body["fhirUser"], must_change=True, disabled=False)
    assert r.headers.get("Location", "").endswith(f"/users/{body['id']}"), r.headers
    assert identity.get(f"/users/{body['id']}", token=token).status_code == 200
    for role in ("doctor", "receptionist", "technologist", "admin"):
        assert_problem(users.create(token, role), 403, f"receptionist creating {role}")


def test_other_roles_manage_nobody(identity, users):
    doctor = users.staff("doctor")
    tech = users.staff("technologist")
    target = users.staff("receptionist")
    patient = users.patient()
    fresh_patient = users.patient(activate=False)
    otp_token = identity.login_tokens(fresh_patient.username, fresh_patient.password).access_token
    for who, token in {
        "doctor": users.token(doctor),
        "technologist": users.token(tech),
        "patient": users.token(patient),
        "patient with a one-time password": otp_token,
    }.items():
        assert_problem(identity.get("/users", token=token), 403, f"{who} listing users")
        for role in ("patient", "doctor"):
            assert_problem(users.create(token, role), 403, f"{who} creating a {role}")
        r = identity.get(f"/users/{target.id}", token=token)
        assert_problem(r, {403, 404}, f"{who} reading another account")
        r = identity.patch(f"/users/{target.id}", {"name": "Changed"}, token=token)
        assert_problem(r, {403, 404}, f"{who} changing another account")
    assert identity.get(f"/users/{target.id}", token=users.admin.token).json()["name"] != "Changed"


# --------------------------------------------------------------------------- listing and reading


def test_listing_is_scoped_by_role(identity, admin, users):
    doctor = users.staff("doctor")
    patient = users.patient(activate=False)
    everyone = list_users(identity, admin.token)
    roles = {u["role"] for u in everyone}
    assert roles <= {"admin", "doctor", "receptionist", "technologist"}, roles
    ids = {u["id"] for u in everyone}
    assert doctor.id in ids and patient.id not in ids
    for u in everyone:
        assert_user(u)
    doctors = list_users(identity, admin.token, role="doctor")
    assert {u["role"] for u in doctors} == {"doctor"} and doctor.id in {u["id"] for u in doctors}

    seen_by_desk = list_users(identity, users.receptionist_token())
    assert {u["role"] for u in seen_by_desk} == {"patient"}, {u["role"] for u in seen_by_desk}
    desk_ids = {u["id"] for u in seen_by_desk}
    assert patient.id in desk_ids and doctor.id not in desk_ids


def test_listing_pages(identity, admin, users):
    for _ in range(3):
        users.staff("technologist")
    two = identity.get("/users", token=admin.token, params={"limit": 2}).json()["users"]
    assert len(two) == 2, two
    second = identity.get("/users", token=admin.token, params={"limit": 1, "offset": 1}).json()["users"]
    assert [u["id"] for u in second] == [two[1]["id"]]
    default = identity.get("/users", token=admin.token).json()["users"]
    assert len(default) <= 100


def test_reading_outside_the_managed_set_is_404(identity, admin, users):
    doctor = users.staff("doctor")
    patient = users.patient(activate=False)
    desk = users.receptionist_token()
    unknown = str(uuid.uuid4())
    hidden = {
        "receptionist reads a doctor": identity.get(f"/users/{doctor.id}", token=desk),
        "receptionist patches a doctor": identity.patch(f"/users/{doctor.id}", {"name": "X"}, token=desk),
        "admin reads a patient": identity.get(f"/users/{patient.id}", token=admin.token),
        "admin patches a patient": identity.patch(f"/users/{patient.id}", {"disabled": True}, token=admin.token),
    }
    missing = {
        "unknown id": identity.get(f"/users/{unknown}", token=admin.token),
        "not a UUID": identity.get("/users/not-a-uuid", token=admin.token),
        "unknown id (receptionist)": identity.get(f"/users/{unknown}", token=desk),
    }
    for name, r in {**hidden, **missing}.items():
        assert_problem(r, 404, name)
    # Hidden and missing accounts look alike.
    titles = {r.json()["title"] for r in [*hidden.values(), *missing.values()]}
    assert len(titles) == 1, titles
    # Nothing changed, and the managed ones are readable.
    assert identity.get(f"/users/{doctor.id}", token=admin.token).json()["name"] != "X"
    r = identity.get(f"/users/{patient.id}", token=desk)
    assert r.status_code == 200 and r.json()["disabled"] is False, idl.describe(r)


# --------------------------------------------------------------------------- one-time passwords


def test_patient_one_time_password_flow(identity, users, stack):
    created = users.create(users.receptionist_token(), "patient")
    assert created.status_code == 201, idl.describe(created)
    patient = created.json()
    otp = created.request_password
    assert patient["mustChangePassword"] is True

    # Login works, but the token can only change the password.
    ts = identity.login_tokens(patient["username"], otp)
    assert ts.scopes == {idl.PASSWORD_CHANGE_SCOPE}, ts.scope
    idl.assert_access_token(ts, stack["IDENTITY_URL"], sub=patient["id"], scope={idl.PASSWORD_CHANGE_SCOPE}, session=True)
    assert_problem(identity.me(ts.access_token), 403, "GET /users/me before changing the one-time password")
    assert_problem(identity.get("/users", token=ts.access_token), 403, "listing with a password-change token")

    # Wrong current password, the same password again, a weak one: refused.
    new = idl.remember_password(idl.strong_password())
    assert_problem(identity.change_password(ts.access_token, otp + "x", new), 403, "wrong current password")
    assert_problem(identity.change_password(ts.access_token, otp, otp), 422, "new password equal to the current")
    assert_problem(identity.change_password(ts.access_token, otp, "short1A!"), 422, "weak new password")
    r = identity.request("POST", "/users/me/password", token=ts.access_token, data=b"{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed JSON")

    r = identity.change_password(ts.access_token, otp, new)
    assert r.status_code == 204 and r.content == b"", idl.describe(r)

    # The old password is gone; the new one gives the patient's scopes.
    assert_problem(identity.login(patient["username"], otp), 401, "login with the one-time password after the change")
    full = identity.login_tokens(patient["username"], new)
    assert full.scopes == idl.ROLE_SCOPES["patient"], full.scope
    idl.assert_access_token(
        full, stack["IDENTITY_URL"], sub=patient["id"], role="patient", scope=idl.ROLE_SCOPES["patient"],
        fhir_user=patient["fhirUser"], session=True,
    )  # fmt: skip
    me = identity.me(full.access_token)
    assert me.status_code == 200, idl.describe(me)
    assert_user(me.json(), username=patient["username"], role="patient", must_change=False)

    # The first session's refresh now yields the full scopes (recomputed from the account).
    refreshed = idl.token_set(identity.refresh(ts.refresh_token), "refresh after the password change")
    assert refreshed.scopes == idl.ROLE_SCOPES["patient"], refreshed.scope


def test_staff_change_their_own_password(identity, users):
    acct = users.staff("technologist")
    ts = identity.login_tokens(acct.username, acct.password)
    new = idl.remember_password(idl.strong_password())
    r = identity.change_password(ts.access_token, acct.password, new)
    assert r.status_code == 204, idl.describe(r)
    assert_problem(identity.login(acct.username, acct.password), 401, "old password")
    assert identity.login_tokens(acct.username, new).scopes == idl.ROLE_SCOPES["technologist"]


# --------------------------------------------------------------------------- changing accounts


def test_disable_blocks_login_and_ends_sessions(identity, admin, users):
    acct = users.staff("doctor")
    ts = identity.login_tokens(acct.username, acct.password)
    r = identity.patch(f"/users/{acct.id}", {"disabled": True}, token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    assert_user(r.json(), disabled=True)
    assert_problem(identity.login(acct.username, acct.password), 401, "login of a disabled account")
    idl.assert_oauth_error(identity.password_grant(acct.username, acct.password), "invalid_grant")
    idl.assert_oauth_error(identity.refresh(ts.refresh_token), "invalid_grant")
    assert_problem(identity.me(ts.access_token), 401, "access token of a disabled account's ended session")
    # Enabled again: logs in (the old session stays ended).
    r = identity.patch(f"/users/{acct.id}", {"disabled": False}, token=admin.token)
    assert r.status_code == 200 and r.json()["disabled"] is False, idl.describe(r)
    identity.login_tokens(acct.username, acct.password)
    idl.assert_oauth_error(identity.refresh(ts.refresh_token), "invalid_grant")


def test_receptionist_disables_a_patient(identity, users):
    patient = users.patient()
    r = identity.patch(f"/users/{patient.id}", {"disabled": True}, token=users.receptionist_token())
    assert r.status_code == 200 and r.json()["disabled"] is True, idl.describe(r)
    assert_problem(identity.login(patient.username, patient.password), 401, "disabled patient")


def test_password_reset_requires_a_change(identity, admin, users, stack):
    acct = users.staff("receptionist")
    new = idl.remember_password(idl.strong_password())
    r = identity.patch(f"/users/{acct.id}", {"password": new}, token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    assert_user(r.json(), must_change=True)
    assert r.json()["lockedUntil"] is None
    assert_problem(identity.login(acct.username, acct.password), 401, "old password after a reset")
    ts = identity.login_tokens(acct.username, new)
    assert ts.scopes == {idl.PASSWORD_CHANGE_SCOPE}, ts.scope
    assert_problem(identity.get("/users", token=ts.access_token), 403, "receptionist before changing a reset password")
    weak = identity.patch(f"/users/{acct.id}", {"password": "tooshort"}, token=admin.token)
    assert_problem(weak, 422, "reset to a weak password")


def test_patch_fields(identity, admin, users):
    acct = users.staff("doctor")
    before = identity.get(f"/users/{acct.id}", token=admin.token).json()
    r = identity.patch(f"/users/{acct.id}", {"name": "Dr E2E Renamed"}, token=admin.token)
    assert r.status_code == 200 and r.json()["name"] == "Dr E2E Renamed", idl.describe(r)
    assert _time(r.json()["updatedAt"]) >= _time(before["updatedAt"])
    assert r.json()["createdAt"] == before["createdAt"]
    # application/merge-patch+json too; fhirUser may be cleared.
    r = identity.request("PATCH", f"/users/{acct.id}", token=admin.token, data=json.dumps({"fhirUser": None}).encode(),
                         headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
    assert r.status_code == 200 and r.json()["fhirUser"] is None, idl.describe(r)
    # A role change within the admin's managed set shows in the next token.
    r = identity.patch(f"/users/{acct.id}", {"role": "technologist"}, token=admin.token)
    assert r.status_code == 200 and r.json()["role"] == "technologist", idl.describe(r)
    ts = identity.login_tokens(acct.username, acct.password)
    assert ts.claims["role"] == "technologist" and ts.scopes == idl.ROLE_SCOPES["technologist"], ts.claims
    assert "fhirUser" not in ts.claims, ts.claims
    # Staff never become patients; bad values are refused and change nothing.
    assert_problem(identity.patch(f"/users/{acct.id}", {"role": "patient"}, token=admin.token), {403, 409, 422}, "staff -> patient")
    assert_problem(identity.patch(f"/users/{acct.id}", {"fhirUser": "Patient/x"}, token=admin.token), 422, "staff fhirUser Patient/")
    assert_problem(identity.patch(f"/users/{acct.id}", {"name": ""}, token=admin.token), 422, "empty name")
    assert_problem(identity.patch(f"/users/{acct.id}", {"disabled": "yes"}, token=admin.token), {400, 422}, "disabled not a bool")
    r = identity.request("PATCH", f"/users/{acct.id}", token=admin.token, data=b'{"name":', headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "malformed JSON")
    r = identity.request("PATCH", f"/users/{acct.id}", token=admin.token, data=b'{"name": "x"}', headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "PATCH text/plain")
    after = identity.get(f"/users/{acct.id}", token=admin.token).json()
    assert after["role"] == "technologist" and after["name"] == "Dr E2E Renamed" and after["disabled"] is False


def test_admin_cannot_disable_or_demote_itself(identity, users):
    other_admin = users.staff("admin")
    token = users.token(other_admin)
    me = identity.me(token)
    assert me.status_code == 200 and me.json()["id"] == other_admin.id, idl.describe(me)
    assert_problem(identity.patch(f"/users/{other_admin.id}", {"disabled": True}, token=token), 409, "admin disables itself")
    assert_problem(identity.patch(f"/users/{other_admin.id}", {"role": "doctor"}, token=token), 409, "admin demotes itself")
    after = identity.get(f"/users/{other_admin.id}", token=token).json()
    assert after["disabled"] is False and after["role"] == "admin", after
    identity.login_tokens(other_admin.username, other_admin.password)


# --------------------------------------------------------------------------- validation


def test_duplicate_username_is_409(identity, admin, users):
    first = users.create(admin.token, "doctor")
    assert first.status_code == 201, idl.describe(first)
    name = first.request_body["username"]
    assert_problem(users.create(admin.token, "technologist", username=name), 409, "same username")
    assert_problem(users.create(admin.token, "doctor", username=name.upper()), 409, "same username in upper case")
    # Usernames are lower-cased on input.
    upper = idl.unique_username("case").upper()
    r = users.create(admin.token, "doctor", username=upper)
    assert r.status_code == 201 and r.json()["username"] == upper.lower(), idl.describe(r)
    # A patient with a staff member's username: also taken.
    assert_problem(users.create(users.receptionist_token(), "patient", username=name), 409, "patient with a staff username")


def test_invalid_values_are_422(identity, admin, users):
    def doctor(role="doctor", **kw):
        return users.create(admin.token, role, **kw)

    u = idl.unique_username("weak")
    cases = {
        "password too short": doctor(password="Aa1!short"),
        "password of one character class": doctor(password="onlylowercaseletters"[:19]),
        "password with two classes, under 20": doctor(password="lowercase12345678"),
        "password containing the username": doctor(username=u, password=f"Xx9!{u}"),
        "password over 72 bytes": doctor(password="Aa1!" + "é" * 40),
        "unknown role": doctor(role="nurse"),
        "client role": doctor(role="service"),
        "username too short": doctor(username="ab"),
        "username too long": doctor(username="e2e." + "x" * 61),
        "username with a space": doctor(username="e2e bad name"),
        "username with a slash": doctor(username="e2e/bad"),
        "empty name": doctor(name=""),
        "name over 200 characters": doctor(name="N" * 201),
        "doctor with a Patient fhirUser": doctor(fhirUser="Patient/e2e-1"),
        "fhirUser without id": doctor(fhirUser="Practitioner/"),
        "fhirUser with a bad id": doctor(fhirUser="Practitioner/a b"),
        "fhirUser id over 64": doctor(fhirUser="Practitioner/" + "a" * 65),
        "fhirUser absolute URL": doctor(fhirUser="http://example.org/fhir/Practitioner/1"),
        "fhirUser Organization": doctor(fhirUser="Organization/e2e"),
        "patient with a Practitioner fhirUser": users.create(users.receptionist_token(), "patient", fhirUser="Practitioner/e2e-2"),
    }
    failures = []
    for name, r in cases.items():
        try:
            assert_problem(r, 422, name)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, "\n".join(failures)


def test_malformed_create_requests(identity, admin):
    good = {"username": idl.unique_username("bad"), "password": idl.strong_password(), "role": "doctor", "name": "E2E"}
    bodies = {
        "malformed JSON": b'{"username": "x", ',
        "not JSON": b"hello",
        "an array": b"[]",
        "null": b"null",
        "missing password": json.dumps({k: v for k, v in good.items() if k != "password"}).encode(),
        "missing role": json.dumps({k: v for k, v in good.items() if k != "role"}).encode(),
        "role not a string": json.dumps({**good, "role": 5}).encode(),
        "password not a string": json.dumps({**good, "password": 123456789012345}).encode(),
        "unknown member": json.dumps({**good, "isAdmin": True}).encode(),
    }
    for name, body in bodies.items():
        r = identity.request("POST", "/users", token=admin.token, data=body, headers={"Content-Type": "application/json"})
        assert_problem(r, 400, name)
    for ct in ("text/plain", "application/x-www-form-urlencoded"):
        r = identity.request("POST", "/users", token=admin.token, data=json.dumps(good).encode(), headers={"Content-Type": ct})
        assert_problem(r, 415, ct)
    # None of it created the account.
    assert_problem(identity.login(good["username"], good["password"]), 401, "no account was created")


def test_users_endpoints_need_a_token(identity, users):
    acct = users.staff("doctor")
    for method, path in (("GET", "/users/me"), ("GET", "/users"), ("POST", "/users"), ("GET", f"/users/{acct.id}"),
                         ("PATCH", f"/users/{acct.id}"), ("POST", "/users/me/password"), ("GET", "/clients")):  # fmt: skip
        body = {"data": b"{}", "headers": {"Content-Type": "application/json"}} if method != "GET" else {}
        r = identity.request(method, path, **body)
        assert_problem(r, 401, f"{method} {path} without a token")
