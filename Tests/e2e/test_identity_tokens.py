"""Identity's tokens and OAuth endpoints, black-box: JWKS, /auth/login, every grant of
/auth/token (RFC 6749), refresh token rotation and reuse detection, scope narrowing, RFC 6749
error answers, logout, and the discovery documents checked against the real endpoints.

Oracles: PyJWT + PyJWKClient against /.well-known/jwks.json and, as a second JOSE
implementation, joserfc; the RFC 6749 / RFC 8414 / SMART App Launch texts for the shapes.
"""

from __future__ import annotations

import base64
import json
import uuid
import warnings

import identitylib as idl
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import assert_problem
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

GRANTS = {"password", "client_credentials", "refresh_token"}
NOT_GRANTS = [
    "authorization_code",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:saml2-bearer",
    "client_credential",
    "refresh",
]


@pytest.fixture(scope="module")
def service_client(stack) -> tuple[str, str]:
    return stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"]


@pytest.fixture(scope="module")
def doctor(users) -> idl.Account:
    return users.staff("doctor")


def _joserfc_claims(token: str, jwks: dict) -> dict:
    """Verify with joserfc (a JOSE implementation independent of PyJWT)."""
    keys = KeySet.import_key_set(jwks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA is deprecated via RFC 9864": still the contract
        tok = jose_jwt.decode(token, keys, algorithms=["EdDSA"])
    return dict(tok.claims)


# --------------------------------------------------------------------------- JWKS


def test_jwks_document(identity):
    r = identity.get("/.well-known/jwks.json")
    assert r.status_code == 200, idl.describe(r)
    assert idl.media_type(r) in ("application/json", "application/jwk-set+json"), r.headers
    cache = r.headers.get("Cache-Control", "")
    assert "public" in cache and "max-age=60" in cache, f"Cache-Control: {cache!r}"
    keys = r.json()["keys"]
    assert 1 <= len(keys) <= 2, f"the current key, then at most the previous one: {keys}"
    kids = [k.get("kid") for k in keys]
    assert len(set(kids)) == len(kids) and all(isinstance(k, str) and k for k in kids), kids
    for k in keys:
        assert {k.get("kty"), k.get("crv"), k.get("alg"), k.get("use")} == {"OKP", "Ed25519", "EdDSA", "sig"}, k
        assert not {"d", "p", "q", "k"} & set(k), f"private key material in the JWKS: {sorted(k)}"
        assert "=" not in k["x"] and len(idl.unb64url(k["x"])) == 32, k
        jwt.PyJWK(k)  # PyJWT accepts it as an Ed25519 key
    KeySet.import_key_set(r.json())  # and so does joserfc


# --------------------------------------------------------------------------- user tokens


def test_login_token_verifies_independently(identity, users, stack, doctor):
    r = identity.login(doctor.username, doctor.password)
    ts = idl.token_set(r, "login")
    assert ts.refresh_token and isinstance(ts.refresh_token, str), ts.body
    assert ts.expires_in == 900, f"ACCESS_TOKEN_TTL_SECONDS defaults to 900: {ts.body}"
    claims = idl.assert_access_token(
        ts, stack["IDENTITY_URL"], sub=doctor.id, role="doctor", scope=idl.ROLE_SCOPES["doctor"],
        fhir_user=doctor.fhir_user, session=True,
    )  # fmt: skip
    assert ts.scopes == idl.ROLE_SCOPES["doctor"], ts.scope
    assert "trusted" not in claims, claims
    # The kid is one the JWKS lists, and joserfc agrees with PyJWT on signature and claims.
    jwks = identity.jwks()
    assert ts.header["kid"] in [k["kid"] for k in jwks["keys"]]
    assert _joserfc_claims(ts.access_token, jwks) == claims
    # Identity accepts its own token.
    me = identity.me(ts.access_token)
    assert me.status_code == 200, idl.describe(me)
    assert me.json()["id"] == doctor.id and me.json()["username"] == doctor.username


def test_password_grant_at_the_token_endpoint(identity, stack, doctor, service_client):
    r = identity.password_grant(doctor.username, doctor.password)
    ts = idl.token_set(r, "password grant")
    assert "no-cache" in r.headers.get("Pragma", ""), r.headers
    assert ts.refresh_token, ts.body
    idl.assert_access_token(
        ts, stack["IDENTITY_URL"], sub=doctor.id, role="doctor", scope=idl.ROLE_SCOPES["doctor"], session=True
    )
    # Client authentication is optional for the password grant; when given and valid it works.
    ts2 = idl.token_set(identity.password_grant(doctor.username, doctor.password, client=service_client))
    idl.assert_access_token(ts2, stack["IDENTITY_URL"], sub=doctor.id, role="doctor", session=True)
    # ... and when given and invalid it fails as invalid_client, even with good user credentials.
    bad = identity.password_grant(doctor.username, doctor.password, client=(service_client[0], "x" * 43))
    idl.assert_oauth_error(bad, "invalid_client", 401)


def test_jti_unique_and_one_session_per_login(identity, doctor):
    logins = [identity.login_tokens(doctor.username, doctor.password) for _ in range(3)]
    refreshed = idl.token_set(identity.refresh(logins[0].refresh_token), "refresh")
    all_tokens = [*logins, refreshed]
    jtis = [t.claims["jti"] for t in all_tokens]
    assert len(set(jtis)) == len(jtis), jtis
    sids = [t.claims["sid"] for t in logins]
    assert len(set(sids)) == len(sids), f"each login is its own session: {sids}"
    assert refreshed.claims["sid"] == logins[0].claims["sid"], "a refresh stays in its session"
    assert len({t.access_token for t in all_tokens}) == len(all_tokens)


# --------------------------------------------------------------------------- client tokens


@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_credentials(identity, stack, service_client, method):
    r = identity.client_credentials(*service_client, method=method)
    ts = idl.token_set(r, f"client_credentials ({method})")
    assert "no-cache" in r.headers.get("Pragma", ""), r.headers
    assert "refresh_token" not in ts.body, f"client_credentials answers carry no refresh token: {ts.body}"
    claims = idl.assert_access_token(
        ts, stack["IDENTITY_URL"], sub=service_client[0], role="service", scope=idl.SERVICE_SCOPES, session=False,
        fhir_user=None,  # the script client has no organization
    )
    assert isinstance(claims.get("trusted"), bool), f"client tokens carry `trusted`: {claims}"
    _joserfc_claims(ts.access_token, identity.jwks())


def test_basic_credentials_are_form_urlencoded(identity, service_client):
    """RFC 6749 2.3.1: Basic carries form-urlencoded id and secret, so a `%` escape of any
    character (here the secret's first one, and a `.`/`-` in the id) must be decoded."""
    cid, secret = service_client
    enc_secret = f"%{ord(secret[0]):02X}" + secret[1:]
    enc_id = "".join(f"%{ord(c):02X}" if c in ".-_" else c for c in cid)
    header = "Basic " + base64.b64encode(f"{enc_id}:{enc_secret}".encode()).decode()
    r = identity.token_request({"grant_type": "client_credentials"}, headers={"Authorization": header})
    ts = idl.token_set(r, "client_credentials with a %-encoded Basic secret")
    assert ts.claims["sub"] == cid, ts.claims


# --------------------------------------------------------------------------- refresh tokens


def test_refresh_rotation_and_reuse_revokes_the_session(identity, stack, doctor):
    first = identity.login_tokens(doctor.username, doctor.password)
    rt1 = first.refresh_token
    second = idl.token_set(identity.refresh(rt1), "refresh #1")
    rt2 = second.refresh_token
    assert rt2 and rt2 != rt1, "refresh must rotate the refresh token"
    assert second.access_token != first.access_token
    idl.assert_access_token(
        second, stack["IDENTITY_URL"], sub=doctor.id, role="doctor", scope=idl.ROLE_SCOPES["doctor"], session=True
    )
    third = idl.token_set(identity.refresh(rt2), "refresh #2")
    rt3 = third.refresh_token
    assert rt3 not in (rt1, rt2)
    # Replaying an already used refresh token: invalid_grant, and the session ends ...
    idl.assert_oauth_error(identity.refresh(rt1), "invalid_grant")
    # ... so even the newest refresh token of that session stops working.
    idl.assert_oauth_error(identity.refresh(rt3), "invalid_grant")
    idl.assert_oauth_error(identity.refresh(rt2), "invalid_grant")
    # Another session of the same user is not affected.
    other = identity.login_tokens(doctor.username, doctor.password)
    idl.token_set(identity.refresh(other.refresh_token), "refresh in another session")


def test_bad_refresh_tokens(identity, doctor):
    ts = identity.login_tokens(doctor.username, doctor.password)
    for bad in ("garbage", ts.refresh_token + "x", ts.access_token, "A" * len(ts.refresh_token)):
        idl.assert_oauth_error(identity.refresh(bad), "invalid_grant")
    # None of that hurt the genuine one.
    idl.token_set(identity.refresh(ts.refresh_token), "genuine refresh after bad ones")


# --------------------------------------------------------------------------- scopes


def test_scope_narrowing_and_invalid_scope(identity, stack, doctor, service_client):
    narrow = "user/Patient.rs medledger/break-glass"
    ts = idl.token_set(identity.password_grant(doctor.username, doctor.password, scope=narrow))
    assert ts.scopes == idl.scopes(narrow), ts.scope
    idl.assert_access_token(ts, stack["IDENTITY_URL"], scope=idl.scopes(narrow), role="doctor", session=True)
    # A refresh may narrow further.
    ts2 = idl.token_set(identity.refresh(ts.refresh_token, scope="user/Patient.rs"))
    assert ts2.scopes == {"user/Patient.rs"}, ts2.scope
    # Clients too.
    cc = idl.token_set(identity.client_credentials(*service_client, scope="medledger/audit.write"))
    assert cc.scopes == {"medledger/audit.write"} and cc.claims["scope"] == "medledger/audit.write", cc.body

    # Anything outside the allowed scopes: invalid_scope.
    for scope in ("medledger/users.manage", "user/Patient.rs user/Patient.cruds", "patient/Patient.r", "openid-nope"):
        idl.assert_oauth_error(identity.password_grant(doctor.username, doctor.password, scope=scope), "invalid_scope")
    for scope in ("medledger/ledger.append system/*.cruds", "medledger/users.manage"):
        idl.assert_oauth_error(identity.client_credentials(*service_client, scope=scope), "invalid_scope")
    fresh = identity.login_tokens(doctor.username, doctor.password)
    idl.assert_oauth_error(identity.refresh(fresh.refresh_token, scope="medledger/verify-all"), "invalid_scope")


# --------------------------------------------------------------------------- errors


def test_unsupported_grant_types(identity):
    for grant in NOT_GRANTS:
        idl.assert_oauth_error(identity.token_request({"grant_type": grant, "code": "x"}), "unsupported_grant_type")


def test_invalid_client(identity, service_client):
    cid, secret = service_client
    cases = {
        "wrong secret (basic)": identity.client_credentials(cid, secret[:-1] + ("A" if secret[-1] != "A" else "B")),
        "unknown client (basic)": identity.client_credentials(f"e2e-nobody-{uuid.uuid4().hex[:8]}", secret),
        "empty secret (basic)": identity.client_credentials(cid, ""),
    }
    for name, r in cases.items():
        body = idl.assert_oauth_error(r, "invalid_client", 401)
        challenge = r.headers.get("WWW-Authenticate", "")
        assert challenge.startswith("Basic") and 'realm="medledger"' in challenge, (name, r.headers, body)
    for name, r in {
        "wrong secret (post)": identity.client_credentials(cid, secret + "x", method="post"),
        "unknown client (post)": identity.client_credentials(f"e2e-nobody-{uuid.uuid4().hex[:8]}", secret, method="post"),
        "no client authentication": identity.token_request({"grant_type": "client_credentials"}),
    }.items():
        assert r.status_code == 401, f"{name}: {idl.describe(r)}"
        idl.assert_oauth_error(r, "invalid_client", 401)
    # A Basic header that is not base64 at all: a bad request or failed client authentication.
    r = identity.token_request({"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!!not-base64"})
    idl.assert_oauth_error(r, {"invalid_client", "invalid_request"}, {400, 401})
    # The same unknown-vs-wrong answer: nothing tells whether a client id exists.
    a = idl.assert_oauth_error(cases["wrong secret (basic)"], "invalid_client")
    b = idl.assert_oauth_error(cases["unknown client (basic)"], "invalid_client")
    assert a == b, (a, b)


def test_invalid_request(identity, doctor, service_client):
    u, p = doctor.username, doctor.password
    cases = {
        "no grant_type": {"username": u, "password": p},
        "password grant without password": {"grant_type": "password", "username": u},
        "password grant without username": {"grant_type": "password", "password": p},
        "refresh grant without refresh_token": {"grant_type": "refresh_token"},
        "duplicated grant_type": [("grant_type", "password"), ("grant_type", "password"), ("username", u), ("password", p)],
        "duplicated username": [("grant_type", "password"), ("username", u), ("username", u), ("password", p)],
        "empty body": "",
    }
    for name, form in cases.items():
        r = identity.token_request(form)
        try:
            idl.assert_oauth_error(r, "invalid_request", 400)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    # client_secret_post with a duplicated secret.
    cid, secret = service_client
    r = identity.token_request([("grant_type", "client_credentials"), ("client_id", cid), ("client_secret", secret),
                                ("client_secret", secret)])  # fmt: skip
    idl.assert_oauth_error(r, "invalid_request", 400)
    # Two authentication methods at once (RFC 6749 2.3: a client MUST NOT use more than one).
    r = identity.token_request({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
                               client=service_client)  # fmt: skip
    idl.assert_oauth_error(r, {"invalid_request", "invalid_client"}, {400, 401})


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        (None, b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--\r\n'),
    ],
    ids=["json", "text-plain", "none", "multipart"],
)  # fmt: skip
def test_token_endpoint_wrong_content_type_is_invalid_request(identity, service_client, content_type, body):
    r = identity.token_request(body, client=service_client, content_type=content_type)
    idl.assert_oauth_error(r, "invalid_request", 400)


def test_token_endpoint_only_accepts_post(identity):
    r = identity.get("/auth/token?grant_type=client_credentials")
    assert r.status_code in (404, 405), idl.describe(r)


# --------------------------------------------------------------------------- /auth/login


def test_login_endpoint_errors(identity, doctor):
    good = {"username": doctor.username, "password": doctor.password}
    assert_problem(identity.request("POST", "/auth/login", data=b'{"username": "x", "password": ',
                                    headers={"Content-Type": "application/json"}), 400, "malformed JSON")  # fmt: skip
    for name, body in {
        "missing password": {"username": doctor.username},
        "missing username": {"password": doctor.password},
        "non-string password": {"username": doctor.username, "password": 12345678901234},
        "null username": {"username": None, "password": doctor.password},
        "array body": [good],
    }.items():
        assert_problem(identity.post("/auth/login", body), 400, name)
    for ct in ("text/plain", "application/x-www-form-urlencoded"):
        r = identity.request("POST", "/auth/login", data=json.dumps(good).encode(), headers={"Content-Type": ct})
        assert_problem(r, 415, ct)
    wrong = identity.login(doctor.username, doctor.password + "x")
    unknown = identity.login(f"e2e.nobody.{uuid.uuid4().hex[:12]}", doctor.password)
    assert_problem(wrong, 401, "wrong password")
    assert_problem(unknown, 401, "unknown user")
    assert idl.problem_fingerprint(wrong) == idl.problem_fingerprint(unknown)
    assert "no-store" in identity.login(doctor.username, doctor.password).headers.get("Cache-Control", "")


def test_password_grant_wrong_and_unknown_are_indistinguishable(identity, doctor):
    wrong = identity.password_grant(doctor.username, doctor.password + "x")
    unknown = identity.password_grant(f"e2e.nobody.{uuid.uuid4().hex[:12]}", doctor.password)
    assert idl.assert_oauth_error(wrong, "invalid_grant") == idl.assert_oauth_error(unknown, "invalid_grant")
    # Two failures only: the account is not locked (LOCKOUT_THRESHOLD is 5).
    idl.token_set(identity.login(doctor.username, doctor.password))


# --------------------------------------------------------------------------- logout


def test_logout_ends_the_session(identity, users):
    acct = users.staff("technologist")
    ts = identity.login_tokens(acct.username, acct.password)
    other = identity.login_tokens(acct.username, acct.password)
    assert identity.me(ts.access_token).status_code == 200
    r = identity.logout(ts.access_token)
    assert r.status_code == 204, idl.describe(r)
    assert r.content == b"", r.content
    idl.assert_oauth_error(identity.refresh(ts.refresh_token), "invalid_grant")
    assert_problem(identity.me(ts.access_token), 401, "access token of an ended session")
    again = identity.logout(ts.access_token)  # idempotent (204) or refused like any ended session's token (401)
    assert again.status_code == 204 or assert_problem(again, 401, "logout again with the ended session's token")
    # The other session goes on.
    assert identity.me(other.access_token).status_code == 200
    idl.token_set(identity.refresh(other.refresh_token), "refresh of another session after logout")


def test_logout_without_session_and_without_token(identity, service_client):
    cc = idl.token_set(identity.client_credentials(*service_client))
    r = identity.logout(cc.access_token)
    assert r.status_code == 204, idl.describe(r)
    assert_problem(identity.logout(None), 401, "logout without a token")
    assert_problem(identity.logout("not-a-jwt"), 401, "logout with garbage")


# --------------------------------------------------------------------------- identity rejects bad tokens


def test_identity_rejects_forged_and_altered_tokens(identity, stack, doctor):
    ts = identity.login_tokens(doctor.username, doctor.password)
    claims = ts.claims
    other_key = Ed25519PrivateKey.generate()
    cases = {
        "no token": None,
        "garbage": "not-a-jwt",
        "altered payload": idl.tamper_claims(ts.access_token, role="admin"),
        "altered signature": idl.tamper_signature(ts.access_token),
        "identity's kid, another key": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": ts.header["kid"]}),
        "unknown kid": jwt.encode(claims, other_key, algorithm="EdDSA", headers={"kid": "e2e-" + uuid.uuid4().hex}),
        "alg none": idl.b64url(b'{"alg":"none","typ":"JWT"}') + "." + ts.access_token.split(".")[1] + ".",
    }
    for name, token in cases.items():
        assert_problem(identity.me(token), 401, name)
    assert identity.me(ts.access_token).status_code == 200


# --------------------------------------------------------------------------- discovery


def _exercise_grants(identity, token_endpoint: str, doctor, service_client) -> dict[str, requests.Response]:
    """POST each grant the documents list to the token_endpoint they name."""
    s = requests.Session()
    out = {}
    out["password"] = s.post(token_endpoint, data={"grant_type": "password", "username": doctor.username,
                                                   "password": doctor.password}, timeout=idl.HTTP_TIMEOUT)  # fmt: skip
    out["client_credentials"] = s.post(
        token_endpoint, data={"grant_type": "client_credentials"},
        headers={"Authorization": idl.basic_auth(*service_client)}, timeout=idl.HTTP_TIMEOUT,
    )  # fmt: skip
    rt = out["password"].json().get("refresh_token") if out["password"].status_code == 200 else "none"
    out["refresh_token"] = s.post(token_endpoint, data={"grant_type": "refresh_token", "refresh_token": rt},
                                  timeout=idl.HTTP_TIMEOUT)  # fmt: skip
    return out


def test_openid_configuration_matches_the_endpoints(identity, stack, doctor, service_client):
    r = identity.get("/.well-known/openid-configuration")
    assert r.status_code == 200 and idl.media_type(r) == "application/json", idl.describe(r)
    doc = r.json()
    issuer = stack["IDENTITY_URL"]
    assert doc["issuer"] == issuer, doc
    assert doc["token_endpoint"] == issuer + "/auth/token", doc
    assert doc["jwks_uri"] == issuer + "/.well-known/jwks.json", doc
    assert sorted(doc["grant_types_supported"]) == sorted(GRANTS), doc
    assert sorted(doc["token_endpoint_auth_methods_supported"]) == sorted(
        ["client_secret_basic", "client_secret_post", "none"]
    ), doc
    assert doc["response_types_supported"] == [], doc
    supported = set(doc["scopes_supported"])
    for role, role_scopes in idl.ROLE_SCOPES.items():
        assert role_scopes <= supported, f"{role} scopes missing from scopes_supported: {sorted(role_scopes - supported)}"
    assert idl.SERVICE_SCOPES <= supported, sorted(idl.SERVICE_SCOPES - supported)
    claims_supported = set(doc["claims_supported"])
    expected_claims = {"iss", "sub", "aud", "exp", "iat", "jti", "sid", "role", "fhirUser", "scope"}
    assert expected_claims <= claims_supported, sorted(expected_claims - claims_supported)
    assert doc["service_documentation"] == issuer + "/openapi.yaml", doc
    assert requests.get(doc["service_documentation"], timeout=idl.HTTP_TIMEOUT).status_code == 200

    # The documents' URLs work: the JWKS verifies a token from the token endpoint ...
    jwks = requests.get(doc["jwks_uri"], timeout=idl.HTTP_TIMEOUT)
    assert jwks.status_code == 200 and jwks.json()["keys"], idl.describe(jwks)
    answers = _exercise_grants(identity, doc["token_endpoint"], doctor, service_client)
    for grant, a in answers.items():
        assert a.status_code == 200, f"{grant} at {doc['token_endpoint']}: {idl.describe(a)}"
        token = a.json()["access_token"]
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in jwks.json()["keys"] if k["kid"] == kid)
        jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience=idl.AUDIENCE, issuer=doc["issuer"])
    # ... "none" (no client authentication) is what the password grant above used; the other
    # two methods are exercised by client_credentials (basic above, post here).
    post = identity.client_credentials(*service_client, method="post")
    idl.token_set(post, "client_secret_post")
    # ... and grant types not listed are refused as unsupported.
    for grant in NOT_GRANTS:
        idl.assert_oauth_error(identity.token_request({"grant_type": grant}), "unsupported_grant_type")


def test_smart_configuration_matches(identity, stack):
    oidc = identity.get("/.well-known/openid-configuration").json()
    r = identity.get("/.well-known/smart-configuration")
    assert r.status_code == 200 and idl.media_type(r) == "application/json", idl.describe(r)
    doc = r.json()
    for k in ("issuer", "jwks_uri", "token_endpoint"):
        assert doc[k] == oidc[k], (k, doc[k], oidc[k])
    assert doc["issuer"] == stack["IDENTITY_URL"]
    assert sorted(doc["grant_types_supported"]) == sorted(GRANTS), doc
    assert sorted(doc["token_endpoint_auth_methods_supported"]) == ["client_secret_basic", "client_secret_post"], doc
    assert sorted(doc["capabilities"]) == ["client-confidential-symmetric", "permission-v2"], doc
    assert doc["code_challenge_methods_supported"] == [], doc
    assert doc["response_types_supported"] == [], doc
    assert set(doc["scopes_supported"]) == set(oidc["scopes_supported"]), (doc["scopes_supported"], oidc["scopes_supported"])
