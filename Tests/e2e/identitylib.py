"""Small, independent client helpers for the identity service's black-box tests.

Nothing here is shared with the Swift service: requests for HTTP, PyJWT (and joserfc in the
tests) for tokens, written from RFC 6749 (OAuth 2.0), RFC 7519 (JWT), RFC 8037 (OKP keys) and
the identity API notes. Every HTTP call has a timeout and is never retried.

Every JSON answer that goes through `Identity` is checked for leaked secrets: no member named
like a password or a hash (except `mustChangePassword`), no bcrypt hash anywhere, and none of
the passwords this run created anywhere in the body.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import jwt
import requests

HTTP_TIMEOUT = 30
AUDIENCE = "medledger"
FORM = "application/x-www-form-urlencoded"
PASSWORD_CHANGE_SCOPE = "medledger/password.change"
APPEND_SCOPE = "medledger/ledger.append"
SERVICE_SCOPES = frozenset({"medledger/ledger.append", "medledger/audit.write", "medledger/consent.decide"})

# The scopes each role gets (identity API notes, "Scopes derived from role").
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(
        "user/Practitioner.cruds user/AuditEvent.rs medledger/users.manage medledger/clients.manage "
        "medledger/verify-all medledger/erase".split()
    ),
    "receptionist": frozenset("user/Patient.cruds user/Practitioner.rs user/Consent.cruds medledger/users.manage".split()),
    "technologist": frozenset("user/Patient.rs user/Practitioner.rs user/DiagnosticReport.crus user/Binary.cr".split()),
    "doctor": frozenset(
        "user/Patient.rs user/Practitioner.rs user/DiagnosticReport.crus user/Binary.cr user/Provenance.rs "
        "user/Consent.rs medledger/break-glass".split()
    ),
    "patient": frozenset(
        "patient/Patient.r patient/DiagnosticReport.rs patient/Binary.r patient/Provenance.rs "
        "patient/Consent.cruds patient/AuditEvent.rs".split()
    ),
}
STAFF_ROLES = ("doctor", "receptionist", "technologist")
USER_FIELDS = {
    "id", "username", "name", "role", "fhirUser", "disabled", "mustChangePassword", "lockedUntil", "createdAt", "updatedAt",
}  # fmt: skip
CLIENT_FIELDS = {
    "clientId", "name", "role", "scopes", "organization", "trusted", "disabled", "managedBy", "createdAt", "updatedAt",
}  # fmt: skip

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
BCRYPT_RE = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")


# --------------------------------------------------------------------------- small helpers


def unique_username(label: str = "u") -> str:
    """A username unique to this call: 3-64 of [a-z0-9._@-]."""
    label = re.sub(r"[^a-z0-9]", "", label.lower())[:20] or "u"
    return f"e2e.{label}.{uuid.uuid4().hex[:16]}"


def strong_password() -> str:
    """Random, 26 characters with all four character classes; never contains a username."""
    return "Aa1!" + secrets.token_urlsafe(16) + "-Zz9"


def fhir_id(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: id and secret are form-urlencoded before HTTP Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def scopes(text: str | None) -> set[str]:
    return set((text or "").split())


def unverified_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def unverified_header(token: str) -> dict:
    return jwt.get_unverified_header(token)


def tamper_claims(token: str, **changes) -> str:
    """The same header and signature over a payload with changed claims (must fail verification)."""
    header, payload, sig = token.split(".")
    claims = json.loads(unb64url(payload))
    claims.update(changes)
    new_payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    assert new_payload != payload
    return f"{header}.{new_payload}.{sig}"


def tamper_signature(token: str) -> str:
    header, payload, sig = token.split(".")
    raw = bytearray(unb64url(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def media_type(r: requests.Response) -> str:
    return r.headers.get("Content-Type", "").split(";")[0].strip().lower()


def describe(r: requests.Response) -> str:
    return f"{r.request.method} {r.request.url} -> {r.status_code} {r.headers.get('Content-Type')} {r.text[:400]!r}"


def assert_oauth_error(r: requests.Response, error: str | set[str], status: int | set[int] | None = None) -> dict:
    """An RFC 6749 5.2 error answer: JSON {"error", "error_description"?} with the given code."""
    errors = {error} if isinstance(error, str) else set(error)
    if status is None:
        status = {401} if errors == {"invalid_client"} else {400}
    statuses = {status} if isinstance(status, int) else set(status)
    ctx = describe(r)
    assert r.status_code < 500, "server error: " + ctx
    assert r.status_code in statuses, f"expected status {sorted(statuses)}: " + ctx
    assert media_type(r) == "application/json", "OAuth errors are application/json: " + ctx
    body = r.json()
    assert isinstance(body, dict), ctx
    assert body.get("error") in errors, f"expected error {sorted(errors)}: " + ctx
    assert isinstance(body.get("error_description"), str) and body["error_description"], ctx
    # RFC 6749 5.2: error and error_description use %x20-21 / %x23-5B / %x5D-7E only.
    for k in ("error", "error_description"):
        assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body[k]), (k, body[k])
    assert not set(body) - {"error", "error_description", "error_uri"}, f"unexpected members: {ctx}"
    return body


# --------------------------------------------------------------------------- secrets never leak


_LEAK_LOCK = threading.Lock()
_KNOWN_PASSWORDS: set[str] = set()


def remember_password(password: str) -> str:
    """Register a password this run uses, so no identity answer may ever contain it."""
    if len(password) >= 12:
        with _LEAK_LOCK:
            _KNOWN_PASSWORDS.add(password)
    return password


def forbidden_members(value: Any, path: str = "$") -> list[str]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            lk = k.lower()
            if ("password" in lk and lk != "mustchangepassword") or "hash" in lk or lk in {"secrethash", "salt"}:
                found.append(f"{path}.{k}")
            found += forbidden_members(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += forbidden_members(v, f"{path}[{i}]")
    return found


def check_no_leaks(r: requests.Response, *args, **kwargs) -> None:
    """requests response hook: fail the calling test when an answer leaks a secret."""
    text = r.text
    assert not BCRYPT_RE.search(text), "a bcrypt hash in the answer: " + describe(r)
    with _LEAK_LOCK:
        known = list(_KNOWN_PASSWORDS)
    leaked = [p for p in known if p in text]
    assert not leaked, "a password in the answer: " + describe(r)
    if "json" in media_type(r) and text:
        try:
            body = r.json()
        except ValueError:
            return
        bad = forbidden_members(body)
        assert not bad, f"password/hash members {bad} in the answer: " + describe(r)


# --------------------------------------------------------------------------- tokens


@dataclass
class TokenSet:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    refresh_token: str | None
    body: dict
    headers: dict = field(default_factory=dict)

    @property
    def claims(self) -> dict:
        return unverified_claims(self.access_token)

    @property
    def header(self) -> dict:
        return unverified_header(self.access_token)

    @property
    def scopes(self) -> set[str]:
        return scopes(self.scope)


def token_set(r: requests.Response, what: str = "token request") -> TokenSet:
    assert r.status_code == 200, f"{what}: " + describe(r)
    assert media_type(r) == "application/json", describe(r)
    assert "no-store" in r.headers.get("Cache-Control", ""), f"{what}: token answers must not be stored: {r.headers}"
    body = r.json()
    for k in ("access_token", "token_type", "expires_in", "scope"):
        assert k in body, f"{what}: answer lacks {k}: {body}"
    return TokenSet(
        access_token=body["access_token"],
        token_type=body["token_type"],
        expires_in=body["expires_in"],
        scope=body["scope"],
        refresh_token=body.get("refresh_token"),
        body=body,
        headers=dict(r.headers),
    )


# --------------------------------------------------------------------------- the client


_NO_BODY = object()


class Identity:
    """HTTP client for identity; JSON bodies unless told otherwise."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.hooks["response"].append(check_no_leaks)

    def url(self, path: str) -> str:
        return self.base + path

    def request(
        self, method: str, path: str, *, token: str | None = None, json_body: Any = _NO_BODY,
        data: bytes | str | None = None, headers: dict | None = None, **kw,
    ) -> requests.Response:  # fmt: skip
        h = {}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not _NO_BODY:
            data = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.url(path), data=data, headers=h, **kw)

    def get(self, path: str, token: str | None = None, **kw) -> requests.Response:
        return self.request("GET", path, token=token, **kw)

    def post(self, path: str, body: Any = _NO_BODY, token: str | None = None, **kw) -> requests.Response:
        return self.request("POST", path, token=token, json_body=body, **kw)

    def patch(self, path: str, body: Any, token: str | None = None, **kw) -> requests.Response:
        return self.request("PATCH", path, token=token, json_body=body, **kw)

    # -- auth endpoints

    def login(self, username: str, password: str) -> requests.Response:
        return self.post("/auth/login", {"username": username, "password": password})

    def token_request(
        self, form: dict | list | str | bytes | None, *, client: tuple[str, str] | None = None,
        content_type: str | None = FORM, headers: dict | None = None,
    ) -> requests.Response:  # fmt: skip
        """POST /auth/token with a form body (a dict or a list of pairs to allow duplicates);
        client=(id, secret) authenticates with HTTP Basic."""
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        if client is not None:
            h["Authorization"] = basic_auth(*client)
        h.update(headers or {})
        if isinstance(form, (dict, list)):
            from urllib.parse import urlencode

            form = urlencode(form)
        data = form.encode() if isinstance(form, str) else form
        return self.http.post(self.url("/auth/token"), data=data, headers=h, timeout=HTTP_TIMEOUT)

    def password_grant(
        self, username: str, password: str, scope: str | None = None, client: tuple[str, str] | None = None
    ) -> requests.Response:
        form = {"grant_type": "password", "username": username, "password": password}
        if scope is not None:
            form["scope"] = scope
        return self.token_request(form, client=client)

    def client_credentials(
        self, client_id: str, secret: str, scope: str | None = None, method: str = "basic"
    ) -> requests.Response:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        if method == "basic":
            return self.token_request(form, client=(client_id, secret))
        assert method == "post", method
        return self.token_request({**form, "client_id": client_id, "client_secret": secret})

    def refresh(self, refresh_token: str, scope: str | None = None) -> requests.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            form["scope"] = scope
        return self.token_request(form)

    def logout(self, access_token: str | None) -> requests.Response:
        return self.request("POST", "/auth/logout", token=access_token)

    def jwks(self) -> dict:
        r = self.get("/.well-known/jwks.json")
        assert r.status_code == 200, describe(r)
        return r.json()

    # -- convenience

    def login_tokens(self, username: str, password: str) -> TokenSet:
        return token_set(self.login(username, password), f"login {username}")

    def me(self, token: str) -> requests.Response:
        return self.get("/users/me", token=token)

    def change_password(self, token: str, current: str, new: str) -> requests.Response:
        remember_password(new)
        return self.post("/users/me/password", {"currentPassword": current, "newPassword": new}, token=token)


# --------------------------------------------------------------------------- verification


def jwks_client(identity_url: str) -> jwt.PyJWKClient:
    """A PyJWKClient that always asks identity (no JWK set cache, so a rotation shows at once)."""
    return jwt.PyJWKClient(
        identity_url.rstrip("/") + "/.well-known/jwks.json", cache_jwk_set=False, cache_keys=False, timeout=HTTP_TIMEOUT
    )


def verify_token(token: str, issuer: str, audience: str = AUDIENCE) -> dict:
    """Verify a token as any relying party would: key by kid from identity's JWKS, EdDSA only,
    issuer, audience, exp/iat/sub/jti required. Returns the claims."""
    key = jwks_client(issuer).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        leeway=5,
    )


_ANY = object()


def assert_access_token(
    ts: TokenSet, issuer: str, *, sub: str | None = None, role: str | None = None, scope: set[str] | None = None,
    fhir_user: Any = _ANY, session: bool | None = None, trusted: bool | None = None,
) -> dict:  # fmt: skip
    """Check an access token against the contract, verifying it independently (PyJWT with the
    key that identity's JWKS names by kid). Returns the verified claims."""
    header = ts.header
    assert header.get("alg") == "EdDSA", header
    assert header.get("typ") == "JWT", header
    assert isinstance(header.get("kid"), str) and header["kid"], f"no kid: {header}"
    claims = verify_token(ts.access_token, issuer)
    assert claims["iss"] == issuer, claims
    assert claims["aud"] in (AUDIENCE, [AUDIENCE]), f"aud: {claims['aud']!r}"
    assert ts.token_type == "Bearer", ts.body
    assert isinstance(ts.expires_in, int) and 60 <= ts.expires_in <= 3600, ts.body
    assert claims["exp"] - claims["iat"] == ts.expires_in, (claims, ts.expires_in)
    assert abs(claims["iat"] - time.time()) < 120, f"iat {claims['iat']} is far from now {time.time():.0f}"
    assert isinstance(claims["jti"], str) and UUID_RE.match(claims["jti"]), claims["jti"]
    assert isinstance(claims.get("role"), str) and claims["role"], claims
    assert isinstance(claims.get("scope"), str), claims
    assert scopes(claims["scope"]) == ts.scopes, f"scope claim {claims['scope']!r} != answer {ts.scope!r}"
    assert len(claims["scope"].split()) == len(scopes(claims["scope"])), f"repeated scopes: {claims['scope']!r}"
    if sub is not None:
        assert claims["sub"] == sub, (claims["sub"], sub)
    if role is not None:
        assert claims["role"] == role, (claims["role"], role)
    if scope is not None:
        assert scopes(claims["scope"]) == set(scope), f"scopes {sorted(scopes(claims['scope']))} != {sorted(scope)}"
    if fhir_user is None:
        assert "fhirUser" not in claims, f"fhirUser should be absent: {claims}"
    elif fhir_user is not _ANY:
        assert claims.get("fhirUser") == fhir_user, (claims.get("fhirUser"), fhir_user)
    if session is True:
        assert isinstance(claims.get("sid"), str) and UUID_RE.match(claims["sid"]), f"sid: {claims}"
    elif session is False:
        assert "sid" not in claims, f"client tokens have no session: {claims}"
    if trusted is not None:
        assert claims.get("trusted") is trusted, f"trusted: {claims}"
    return claims


def problem_fingerprint(r: requests.Response) -> tuple:
    """What a problem answer says, minus what differs per request (instance), to compare two
    answers for being indistinguishable."""
    body = r.json() if "json" in media_type(r) else r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("instance", "requestId", "request_id")}
    return r.status_code, media_type(r), json.dumps(body, sort_keys=True), r.headers.get("WWW-Authenticate")


# --------------------------------------------------------------------------- accounts


@dataclass
class Account:
    id: str
    username: str
    password: str
    role: str
    fhir_user: str | None
    body: dict


class AdminSession:
    """The bootstrap admin (ADMIN_USER/ADMIN_PASSWORD), logged in on demand and again shortly
    before its access token expires."""

    def __init__(self, identity: Identity, username: str, password: str):
        self.identity, self.username, self.password = identity, username, remember_password(password)
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    @property
    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._until:
                ts = self.identity.login_tokens(self.username, self.password)
                assert PASSWORD_CHANGE_SCOPE not in ts.scopes, (
                    f"the bootstrap admin must change its password first: {ts.scope}"
                )
                self._token, self._until = ts.access_token, time.time() + max(30, ts.expires_in - 60)
            return self._token


class Users:
    """Creates accounts with unique names: staff through the admin, patients through a
    receptionist (admins cannot create patients)."""

    def __init__(self, identity: Identity, admin: AdminSession):
        self.identity, self.admin = identity, admin
        self._receptionist: Account | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def create(self, creator_token: str, role: str, *, label: str | None = None, fhir: bool = True, **extra) -> requests.Response:
        """POST /users; returns the raw answer (the password is in r.request_password). A
        generated password is remembered (see check_no_leaks); a given one is not."""
        password = extra.pop("password") if "password" in extra else remember_password(strong_password())
        body = {
            "username": extra.pop("username") if "username" in extra else unique_username(label or role),
            "password": password,
            "role": role,
            "name": extra.pop("name") if "name" in extra else f"E2E {role.title()} {uuid.uuid4().hex[:6]}",
        }
        if fhir and role != "admin":
            body["fhirUser"] = f"{'Patient' if role == 'patient' else 'Practitioner'}/{fhir_id()}"
        body.update(extra)
        r = self.identity.post("/users", body, token=creator_token)
        r.request_password = password  # type: ignore[attr-defined]
        r.request_body = body  # type: ignore[attr-defined]
        return r

    def _account(self, r: requests.Response, what: str) -> Account:
        assert r.status_code == 201, f"creating {what}: " + describe(r)
        u = r.json()
        return Account(u["id"], u["username"], r.request_password, u["role"], u.get("fhirUser"), u)  # type: ignore[attr-defined]

    def staff(self, role: str, **kw) -> Account:
        """A doctor, receptionist, technologist or admin, created by the bootstrap admin."""
        return self._account(self.create(self.admin.token, role, **kw), role)

    def receptionist(self) -> Account:
        with self._lock:
            if self._receptionist is None:
                self._receptionist = self.staff("receptionist", label="desk")
            return self._receptionist

    def token(self, account: Account) -> str:
        """A cached access token for an account (logged in again before it expires)."""
        with self._lock:
            tok, until = self._tokens.get(account.id, (None, 0.0))
        if tok is None or time.time() > until:
            ts = self.identity.login_tokens(account.username, account.password)
            tok, until = ts.access_token, time.time() + max(30, ts.expires_in - 60)
            with self._lock:
                self._tokens[account.id] = (tok, until)
        return tok

    def receptionist_token(self) -> str:
        return self.token(self.receptionist())

    def patient(self, activate: bool = True, creator: str | None = None, **kw) -> Account:
        """A patient created by the receptionist (or the receptionist whose token is `creator`)
        with a one-time password; with activate=True it has changed its password, so it holds
        the patient scopes."""
        acct = self._account(self.create(creator or self.receptionist_token(), "patient", **kw), "patient")
        if activate:
            ts = self.identity.login_tokens(acct.username, acct.password)
            new = strong_password()
            r = self.identity.change_password(ts.access_token, acct.password, new)
            assert r.status_code == 204, "patient password change: " + describe(r)
            acct.password = new
        return acct
