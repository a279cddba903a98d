"""Identity's OAuth clients (EHR systems and services), black-box: registration by an admin,
the secret shown once, client_credentials with it (claims checked with PyJWT against the
JWKS), secret rotation, scope and trust changes, disabling, validation and access rules."""

from __future__ import annotations

import re
import uuid

import identitylib as idl
import pytest
from e2e_support import assert_problem

CLIENT_ID_RE = re.compile(r"^[a-z0-9._-]{3,64}$")
SYSTEM_SCOPES = ["system/Patient.rs", "system/DiagnosticReport.rs"]


def _org() -> str:
    return f"Organization/{idl.fhir_id('org')}"


def assert_client(body: dict, *, secret: bool) -> dict:
    missing = idl.CLIENT_FIELDS - set(body)
    assert not missing, f"client JSON lacks {sorted(missing)}: {body}"
    assert CLIENT_ID_RE.match(body["clientId"]), body["clientId"]
    assert isinstance(body["scopes"], list) and all(isinstance(s, str) for s in body["scopes"]), body
    assert isinstance(body["trusted"], bool) and isinstance(body["disabled"], bool), body
    assert body["managedBy"] in ("config", "api"), body
    secret_members = [k for k in body if "secret" in k.lower()]
    if secret:
        assert secret_members == ["clientSecret"], body.keys()
        assert isinstance(body["clientSecret"], str) and len(body["clientSecret"]) >= 32, "a 256-bit secret"
    else:
        assert not secret_members, f"the secret is shown only once: {secret_members}"
    return body


def _register(identity, token: str, **overrides):
    body = {"name": "E2E EHR", "role": "system", "scopes": SYSTEM_SCOPES, "organization": _org(), "trusted": True}
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    return identity.post("/clients", body, token=token)


@pytest.fixture
def ehr(identity, admin) -> dict:
    r = _register(identity, admin.token)
    assert r.status_code == 201, idl.describe(r)
    return r.json()


def test_register_and_use_a_system_client(identity, admin, stack, ehr):
    client = assert_client(ehr, secret=True)
    assert client["role"] == "system" and client["managedBy"] == "api", client
    assert sorted(client["scopes"]) == sorted(SYSTEM_SCOPES) and client["trusted"] is True and client["disabled"] is False
    assert client["organization"].startswith("Organization/"), client
    cid, secret = client["clientId"], client["clientSecret"]

    # Not shown again.
    got = identity.get(f"/clients/{cid}", token=admin.token)
    assert got.status_code == 200, idl.describe(got)
    assert_client(got.json(), secret=False)
    assert secret not in got.text
    listing = identity.get("/clients", token=admin.token)
    assert listing.status_code == 200, idl.describe(listing)
    assert secret not in listing.text
    ids = []
    for c in listing.json()["clients"]:
        assert_client(c, secret=False)
        ids.append(c["clientId"])
    assert cid in ids

    # client_credentials with it, both authentication methods.
    for method in ("basic", "post"):
        ts = idl.token_set(identity.client_credentials(cid, secret, method=method), f"client_credentials ({method})")
        assert "refresh_token" not in ts.body, ts.body
        idl.assert_access_token(
            ts, stack["IDENTITY_URL"], sub=cid, role="system", scope=set(SYSTEM_SCOPES),
            fhir_user=client["organization"], session=False, trusted=True,
        )  # fmt: skip
    narrowed = idl.token_set(identity.client_credentials(cid, secret, scope="system/Patient.rs"))
    assert narrowed.scopes == {"system/Patient.rs"}, narrowed.scope
    idl.assert_oauth_error(identity.client_credentials(cid, secret, scope="system/Binary.r"), "invalid_scope")
    idl.assert_oauth_error(identity.client_credentials(cid, secret, scope="system/Patient.cruds"), "invalid_scope")
    # A client token is not a user: no password grant on its behalf, no refresh.
    idl.assert_oauth_error(identity.password_grant(cid, secret), "invalid_grant")


def test_secret_rotation(identity, admin, ehr):
    cid, old = ehr["clientId"], ehr["clientSecret"]
    idl.token_set(identity.client_credentials(cid, old))
    r = identity.post(f"/clients/{cid}/secret", token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    body = assert_client(r.json(), secret=True)
    new = body["clientSecret"]
    assert body["clientId"] == cid and new != old
    idl.assert_oauth_error(identity.client_credentials(cid, old), "invalid_client", 401)
    idl.assert_oauth_error(identity.client_credentials(cid, old, method="post"), "invalid_client", 401)
    idl.token_set(identity.client_credentials(cid, new), "client_credentials with the rotated secret")


def test_patch_scopes_trust_and_disable(identity, admin, stack, ehr):
    cid, secret = ehr["clientId"], ehr["clientSecret"]
    r = identity.patch(f"/clients/{cid}", {"scopes": ["system/Patient.rs"], "trusted": False, "name": "E2E EHR 2"},
                       token=admin.token)  # fmt: skip
    assert r.status_code == 200, idl.describe(r)
    body = assert_client(r.json(), secret=False)
    assert body["scopes"] == ["system/Patient.rs"] and body["trusted"] is False and body["name"] == "E2E EHR 2", body
    ts = idl.token_set(identity.client_credentials(cid, secret))
    idl.assert_access_token(ts, stack["IDENTITY_URL"], sub=cid, scope={"system/Patient.rs"}, trusted=False, session=False)

    r = identity.patch(f"/clients/{cid}", {"disabled": True}, token=admin.token)
    assert r.status_code == 200 and r.json()["disabled"] is True, idl.describe(r)
    refused = identity.client_credentials(cid, secret)
    idl.assert_oauth_error(refused, {"unauthorized_client", "invalid_client"}, {400, 401})
    if refused.status_code == 400:
        assert refused.json()["error"] == "unauthorized_client", refused.json()

    r = identity.patch(f"/clients/{cid}", {"disabled": False}, token=admin.token)
    assert r.status_code == 200 and r.json()["disabled"] is False, idl.describe(r)
    idl.token_set(identity.client_credentials(cid, secret), "client_credentials after re-enabling")


def test_register_a_service_client_with_a_chosen_id(identity, admin, stack):
    cid = f"e2e-svc-{uuid.uuid4().hex[:12]}"
    r = _register(identity, admin.token, clientId=cid, role="service", scopes=["medledger/audit.write"], organization=None,
                  trusted=None)  # fmt: skip
    assert r.status_code == 201, idl.describe(r)
    body = assert_client(r.json(), secret=True)
    assert body["clientId"] == cid and body["role"] == "service" and body["organization"] is None, body
    ts = idl.token_set(identity.client_credentials(cid, body["clientSecret"]))
    idl.assert_access_token(ts, stack["IDENTITY_URL"], sub=cid, role="service", scope={"medledger/audit.write"},
                            fhir_user=None, session=False)  # fmt: skip
    # The id is taken now.
    assert_problem(_register(identity, admin.token, clientId=cid), 409, "client id taken")


def test_invalid_registrations_are_422(identity, admin):
    cases = {
        "system with a user/ scope": {"scopes": ["user/Patient.rs"]},
        "system with a patient/ scope": {"scopes": ["patient/Patient.r"]},
        "system with a medledger scope": {"scopes": ["medledger/ledger.append"]},
        "bad permission letters": {"scopes": ["system/Patient.x"]},
        "permissions out of order": {"scopes": ["system/Patient.sr"]},
        "not a SMART scope": {"scopes": ["openid-nope"]},
        "service with a user/ scope": {"role": "service", "scopes": ["user/Patient.rs"], "organization": None},
        "service with an unknown medledger scope": {"role": "service", "scopes": ["medledger/users.manage"],
                                                    "organization": None},
        "user role": {"role": "admin"},
        "unknown role": {"role": "robot"},
        "organization of another type": {"organization": "Practitioner/e2e"},
        "organization without id": {"organization": "Organization/"},
        "client id too short": {"clientId": "ab"},
        "client id with upper case": {"clientId": "E2E-Upper"},
        "client id with a colon": {"clientId": "e2e:colon"},
        "client id too long": {"clientId": "e" * 65},
        "empty name": {"name": ""},
    }  # fmt: skip
    failures = []
    for name, overrides in cases.items():
        r = _register(identity, admin.token, **overrides)
        try:
            assert_problem(r, 422, name)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, "\n".join(failures)
    for name, body in {
        "scopes not a list": {"name": "E2E", "role": "system", "scopes": "system/Patient.rs"},
        "missing role": {"name": "E2E", "scopes": SYSTEM_SCOPES},
        "trusted not a bool": {"name": "E2E", "role": "system", "scopes": SYSTEM_SCOPES, "trusted": "yes"},
    }.items():
        assert_problem(identity.post("/clients", body, token=admin.token), 400, name)


def test_config_clients_cannot_be_patched(identity, admin, stack):
    cid = stack["SERVICE_CLIENT_ID"]
    r = identity.get(f"/clients/{cid}", token=admin.token)
    assert r.status_code == 200, idl.describe(r)
    body = assert_client(r.json(), secret=False)
    assert body["managedBy"] == "config" and body["role"] == "service", body
    assert sorted(body["scopes"]) == sorted(idl.SERVICE_SCOPES), body
    # Renaming to the same name would be harmless if it were wrongly accepted.
    assert_problem(identity.patch(f"/clients/{cid}", {"name": body["name"]}, token=admin.token), 409, "PATCH a config client")


def test_clients_are_for_admins_only(identity, users, stack, ehr):
    doctor = users.staff("doctor")
    service = idl.token_set(identity.client_credentials(stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"]))
    for who, token in {
        "receptionist": users.receptionist_token(),
        "doctor": users.token(doctor),
        "service client": service.access_token,
    }.items():
        assert_problem(identity.get("/clients", token=token), 403, f"{who} listing clients")
        assert_problem(identity.get(f"/clients/{ehr['clientId']}", token=token), {403, 404}, f"{who} reading a client")
        assert_problem(_register(identity, token), 403, f"{who} registering a client")
        r = identity.post(f"/clients/{ehr['clientId']}/secret", token=token)
        assert_problem(r, {403, 404}, f"{who} rotating a secret")
    idl.token_set(identity.client_credentials(ehr["clientId"], ehr["clientSecret"]), "the secret was not rotated")
    assert_problem(identity.get("/clients/e2e-no-such-client", token=users.admin.token), 404, "unknown client")
