"""Token attacks on a protected endpoint of each of the five services: forged signatures (a key
that is not in identity's JWKS under a kid that is), `alg: none`, `alg: HS256` keyed with
identity's public key, altered payloads, tokens from identity's own key with another issuer,
another audience or past their expiry, and tokens lacking a required claim. Every one is a 401
(an OperationOutcome under /fhir, problem+json elsewhere) with `WWW-Authenticate: Bearer`, and
the genuine token it was made from works (so a 401 is the attack's doing).

Where the tokens come from:
- Forgeries of genuine tokens go to the running stack.
- Issuer, audience and expiry: a second identity process on identity's database (its signing
  keys) started with another IDENTITY_ISSUER, another MEDLEDGER_AUDIENCE or a 60 s token
  lifetime issues them; the stack's five services must refuse them.
- Missing claims (and the same claim checks once more): identity verifies against its own key
  store, but records, consent, audit and the ledger verify against a JWKS, so a second instance
  of each (the stack's configuration, JWKS_URL=file://… of a key made here: LocalIssuer) checks
  tokens identity would never issue.
Refresh-token reuse ends the session: identity refuses its access tokens at once; the other
services verify tokens locally (design guide, "Auth"), so they accept them until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import identitylib as idl
import jwt
import pytest
import recordslib as rl
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import LocalIssuer, ServiceProcess, assert_problem, safe_free_port, service_token, stack_process_env

SERVICES = ("identity", "records", "consent", "audit", "ledger")
# A protected endpoint per service and who may call it ("admin" or the script client "service").
ENDPOINTS = {
    "identity": ("GET", "/users/me", "admin"),
    "records": ("GET", "/fhir/Practitioner?_count=1", "admin"),
    "consent": ("GET", "/break-glass?limit=1", "admin"),
    "audit": ("GET", "/fhir/AuditEvent?_count=1", "admin"),
    "ledger": ("POST", "/entries", "service"),
}
# What the LocalIssuer's tokens need to be accepted there (identity's tokens carry the same).
LOCAL_CLAIMS = {
    "admin": {"role": "admin", "scope": "user/Practitioner.rs user/AuditEvent.rs"},
    "service": {"role": "service", "scope": idl.APPEND_SCOPE},
}
SHORT_TTL = 60  # identity's shortest access token lifetime


def call(base: str, service: str, token: str | None) -> requests.Response:
    method, path, _ = ENDPOINTS[service]
    h = {"Accept": rl.FHIR_JSON} if path.startswith("/fhir") else {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    body = None
    if method == "POST":
        item = {"idempotencyKey": f"e2e-token-{uuid.uuid4()}", "entry": {"kind": "e2e-token-attack", "id": str(uuid.uuid4())}}
        body, h["Content-Type"] = json.dumps({"entries": [item]}).encode(), "application/json"
    r = requests.request(method, base + path, data=body, headers=h, timeout=60)
    rl.check_fhir_response(r)
    return r


def refused(r: requests.Response, what: str) -> str | None:
    """None when `r` is a proper 401, else what is wrong with it."""
    try:
        if r.status_code == 401 and "/fhir" in r.request.url:
            rl.assert_outcome(r, 401, what=what)
        else:
            assert_problem(r, 401, what)
        assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), f"no WWW-Authenticate: Bearer: {r.headers}"
    except AssertionError as e:
        prefix = "ACCEPTED: " if r.status_code < 300 else ""
        return f"{what}: {prefix}{str(e).splitlines()[0][:300]}"
    return None


def accepted(r: requests.Response, what: str) -> None:
    assert 200 <= r.status_code < 300, f"{what}: the genuine token is refused: {rl.describe(r)}"


@pytest.fixture(scope="module")
def genuine(stack, admin) -> dict[str, str]:
    return {"admin": admin.token, "service": service_token(stack)}


def base_of(stack, service: str) -> str:
    return stack[f"{service.upper()}_URL"].rstrip("/")


# --------------------------------------------------------------------------- forgeries


def b64json(value: dict) -> str:
    return idl.b64url(json.dumps(value, separators=(",", ":")).encode())


def hs256(claims: dict, kid: str, key: bytes) -> str:
    signing_input = b64json({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + b64json(claims)
    return signing_input + "." + idl.b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def forgeries(token: str, jwks: dict) -> dict[str, str]:
    """Tokens made from a genuine one without identity's private key."""
    header, claims = idl.unverified_header(token), idl.unverified_claims(token)
    kid = header["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    payload = token.split(".")[1]
    return {
        "signed with another key under identity's kid": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                                                                   headers={"kid": kid}),  # fmt: skip
        "alg none": b64json({"alg": "none", "typ": "JWT", "kid": kid}) + "." + payload + ".",
        "alg none keeping the signature": b64json({"alg": "none", "typ": "JWT", "kid": kid}) + "." + payload + "." + token.split(".")[2],
        "HS256 keyed with the public key's bytes": hs256(claims, kid, idl.unb64url(jwk["x"])),
        "HS256 keyed with the public key's base64url text": hs256(claims, kid, jwk["x"].encode()),
        "HS256 keyed with the public key as a JWK": hs256(claims, kid, json.dumps(jwk).encode()),
        "altered payload (more scopes)": idl.tamper_claims(token, scope=claims["scope"] + " medledger/verify-all medledger/erase"),
        "altered signature": idl.tamper_signature(token),
        "no signature": token.rsplit(".", 1)[0] + ".",
        "unknown kid": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "e2e-" + uuid.uuid4().hex}),
        "no token": None,  # type: ignore[dict-item]
    }


def test_forged_tokens_are_refused_by_every_service(stack, identity, genuine):
    jwks = identity.jwks()
    problems = []
    for service in SERVICES:
        base, who = base_of(stack, service), ENDPOINTS[service][2]
        accepted(call(base, service, genuine[who]), service)
        for name, token in forgeries(genuine[who], jwks).items():
            if (p := refused(call(base, service, token), f"{service}: {name}")) is not None:
                problems.append(p)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- identity's key, wrong claims


def second_identity(stack, tmp_path, label: str, **overrides: str) -> dict[str, str]:
    """Tokens (admin, script client) from a second identity process on identity's database
    (so signed with identity's own keys) started with `overrides`; the process is gone after."""
    port = safe_free_port()
    exe, env = stack_process_env(stack, "identity", port, **overrides)
    proc = ServiceProcess(exe, env, port, tmp_path / f"identity-{label}.log")
    proc.start()
    try:
        other = idl.Identity(proc.url)
        admin = other.login_tokens(stack["ADMIN_USER"], stack["ADMIN_PASSWORD"]).access_token
        client = idl.token_set(other.client_credentials(stack["SERVICE_CLIENT_ID"], stack["SERVICE_CLIENT_SECRET"])).access_token
    finally:
        proc.kill()
    return {"admin": admin, "service": client}


@pytest.fixture(scope="module")
def misissued(stack, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Tokens signed by identity's key with another issuer, another audience, and a short life
    (minted first, so that the expiry test waits as little as possible)."""
    tmp = tmp_path_factory.mktemp("second-identity")
    out = {"short-lived": second_identity(stack, tmp, "ttl", ACCESS_TOKEN_TTL_SECONDS=str(SHORT_TTL))}
    out["another issuer"] = second_identity(stack, tmp, "iss", IDENTITY_ISSUER="http://identity.evil.example")
    out["another audience"] = second_identity(stack, tmp, "aud", MEDLEDGER_AUDIENCE="another-audience")
    jwks_kids = {k["kid"] for k in idl.Identity(stack["IDENTITY_URL"]).jwks()["keys"]}
    for label, tokens in out.items():
        for token in tokens.values():
            assert idl.unverified_header(token)["kid"] in jwks_kids, f"{label}: not signed with a key identity publishes"
    # The short-lived ones work everywhere now (and each service has them in its cache of verified tokens).
    for service in SERVICES:
        accepted(call(base_of(stack, service), service, out["short-lived"][ENDPOINTS[service][2]]), f"{service} before expiry")
    return out


def test_identitys_key_with_another_issuer_or_audience_is_refused_everywhere(stack, misissued, genuine):
    claims = idl.unverified_claims(misissued["another issuer"]["admin"])
    assert claims["iss"] == "http://identity.evil.example", claims
    assert idl.unverified_claims(misissued["another audience"]["service"])["aud"] in ("another-audience", ["another-audience"])
    problems = []
    for service in SERVICES:
        base, who = base_of(stack, service), ENDPOINTS[service][2]
        for label in ("another issuer", "another audience"):
            if (p := refused(call(base, service, misissued[label][who]), f"{service}: {label}")) is not None:
                problems.append(p)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- tokens identity never issues


def local_variants(issuer: LocalIssuer, who: str) -> tuple[str, dict[str, str]]:
    """A token the instance accepts, and variants that each break one rule."""
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), **LOCAL_CLAIMS[who]}
    if who == "admin":
        base["sid"] = str(uuid.uuid4())
    good = issuer.token(**base)
    spoiled = {
        "expired": {"exp": now - 30, "iat": now - 630},
        "expired a second ago": {"exp": now - 1, "iat": now - 601},
        "not valid before a time to come": {"nbf": now + 300},
        "another audience": {"aud": "another-audience"},
        "an audience list without ours": {"aud": ["another-audience", "medledger-other"]},
        "another issuer": {"iss": "http://identity.evil.example"},
        "the issuer with a trailing slash": {"iss": issuer.issuer + "/"},
        "a role that is no role": {"role": 7},
        **{f"without {claim}": {claim: None} for claim in ("exp", "iat", "iss", "aud", "sub", "jti", "role", "scope")},
    }
    tokens = {name: issuer.token(**{**base, **change}) for name, change in spoiled.items()}
    tokens["without kid"] = jwt.encode(jwt.decode(good, options={"verify_signature": False}), issuer.key, algorithm="EdDSA")
    return good, tokens


@pytest.mark.parametrize("service", ["records", "consent", "audit", "ledger"])
def test_tokens_identity_never_issues_are_refused(stack, tmp_path, service):
    issuer = LocalIssuer(tmp_path / "issuer", stack["IDENTITY_URL"])
    port = safe_free_port()
    exe, env = stack_process_env(stack, service, port, JWKS_URL=issuer.jwks_url)
    proc = ServiceProcess(exe, env, port, tmp_path / f"{service}.log")
    proc.start()
    try:
        good, variants = local_variants(issuer, ENDPOINTS[service][2])
        accepted(call(proc.url, service, good), f"{service} trusting a local key")
        problems = [p for name, token in variants.items() if (p := refused(call(proc.url, service, token), name)) is not None]
    finally:
        proc.kill()
    assert not problems, f"{service}:\n" + "\n".join(problems) + "\n" + proc.tail(20)


# --------------------------------------------------------------------------- refresh reuse


def test_refresh_token_reuse_ends_the_session(stack, identity, users):
    doctor = users.staff("doctor")
    first = identity.login_tokens(doctor.username, doctor.password)
    second = idl.token_set(identity.refresh(first.refresh_token), "the first refresh")
    idl.assert_oauth_error(identity.refresh(first.refresh_token), "invalid_grant")  # reuse: the session ends
    idl.assert_oauth_error(identity.refresh(second.refresh_token), "invalid_grant")
    for n, ts in enumerate((first, second), 1):
        problem = refused(identity.me(ts.access_token), f"identity /users/me with access token {n} of the ended session")
        assert problem is None, problem
    # Records verifies tokens locally (JWKS): the design guide keeps them valid until they expire.
    r = requests.get(base_of(stack, "records") + "/fhir/Practitioner?_count=1",
                     headers={"Authorization": f"Bearer {second.access_token}", "Accept": rl.FHIR_JSON}, timeout=60)  # fmt: skip
    assert r.status_code == 200, rl.describe(r)
    left = second.claims["exp"] - time.time()
    assert left <= 900, f"an ended session's access token lives on for {left:.0f} s at the other services"
    print(f"\nrefresh reuse: identity refuses the session's access tokens at once; records accepts them for {left:.0f} s more")


# --------------------------------------------------------------------------- expiry (last: waits for it)


def test_identitys_expired_tokens_are_refused_everywhere(stack, misissued):
    tokens = misissued["short-lived"]
    exp = max(idl.unverified_claims(t)["exp"] for t in tokens.values())
    assert all(idl.unverified_claims(t)["exp"] - idl.unverified_claims(t)["iat"] == SHORT_TTL for t in tokens.values())
    time.sleep(max(0.0, exp - time.time() + 1.5))
    problems = []
    for service in SERVICES:
        r = call(base_of(stack, service), service, tokens[ENDPOINTS[service][2]])
        if (p := refused(r, f"{service}: expired")) is not None:
            problems.append(p)
    assert not problems, "\n".join(problems)
