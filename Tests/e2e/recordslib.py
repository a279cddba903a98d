"""Small, independent client helpers for the records service's black-box tests (FHIR R4).

Nothing here is shared with the Swift service: requests for HTTP, `fhirkit` (PyPI
`fhirkit-rs`, a FHIR R4 structure validator written in Rust) as the oracle for every FHIR
answer, and identity's public API (identitylib) for the accounts and OAuth clients the tests
act as. Every HTTP call has a timeout and is never retried.

Every JSON answer that goes through `Records` is checked by `validate` (a response hook), so
a test fails as soon as the service answers with a resource, Bundle or OperationOutcome that
is not valid FHIR R4. fhirkit reports unknown elements as errors; the tests that check that
unknown elements are kept name theirs `e2eUnknown…`, and only those are let through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import fhirkit
import identitylib as idl
import requests
from fhirpy import SyncFHIRClient

HTTP_TIMEOUT = 60
FHIR_JSON = "application/fhir+json"
TYPES = ("Patient", "Practitioner", "DiagnosticReport", "Binary")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # lowercase only
INSTANT_MS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ETAG_RE = re.compile(r'^W/"(\d+)"$')
UNKNOWN_OK_PREFIX = "e2eUnknown"  # unknown elements the tests send on purpose
BUNDLE_TYPES = {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                "history", "searchset", "collection"}  # fmt: skip
DR_STATUSES = ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled",
               "entered-in-error", "unknown")  # fmt: skip
PATIENT_VISIBLE_STATUSES = {"final", "amended", "corrected", "appended"}

# --------------------------------------------------------------------------- the validator


def _issue_ok(issue) -> bool:
    if issue.severity != "error":
        return True
    last = issue.path.rsplit(".", 1)[-1]
    return issue.message == "unknown element" and last.startswith(UNKNOWN_OK_PREFIX)


def fhir_problems(resource: Any, where: str = "") -> list[str]:
    """fhirkit's error-level problems with a resource (dict, str or bytes), including the
    resources inside a Bundle's entries (fhirkit checks a Bundle's own elements only) and the
    Bundle.type code (which fhirkit does not check)."""
    try:
        issues = fhirkit.validate(resource)
    except fhirkit.ParseError as e:
        return [f"{where}not JSON: {e}"]
    problems = [f"{where}{i}" for i in issues if not _issue_ok(i)]
    if isinstance(resource, (str, bytes)):
        try:
            resource = json.loads(resource)
        except ValueError:
            return problems
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        if resource.get("type") not in BUNDLE_TYPES:
            problems.append(f"{where}Bundle.type {resource.get('type')!r} is not a Bundle type code")
        for n, entry in enumerate(resource.get("entry") or []):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                problems += fhir_problems(entry["resource"], f"{where}Bundle.entry[{n}].resource: ")
    return problems


def validate(resource_json: Any, what: str = "") -> None:
    """Fail with fhirkit's problem list unless the resource is valid FHIR R4."""
    problems = fhir_problems(resource_json)
    if problems:
        text = resource_json if isinstance(resource_json, str) else (
            resource_json.decode(errors="replace") if isinstance(resource_json, bytes) else json.dumps(resource_json)
        )  # fmt: skip
        raise AssertionError(f"fhirkit: {what} is not valid FHIR R4:\n  " + "\n  ".join(problems) + f"\n{text[:600]}")


def media_type(r: requests.Response) -> str:
    return r.headers.get("Content-Type", "").split(";")[0].strip().lower()


def describe(r: requests.Response) -> str:
    body = r.text[:500] if "json" in media_type(r) or media_type(r).startswith("text/") else f"<{len(r.content)} bytes>"
    return f"{r.request.method} {r.request.url} -> {r.status_code} {r.headers.get('Content-Type')} {body!r}"


def check_fhir_response(r: requests.Response, *args, **kwargs) -> None:
    """requests response hook: every JSON answer of the FHIR base must be valid FHIR R4."""
    if "/fhir" not in urlsplit(r.url).path or not r.content:
        return
    mt = media_type(r)
    if mt not in (FHIR_JSON, "application/json"):
        return
    try:
        body = json.loads(r.content)
    except ValueError:
        raise AssertionError("a JSON answer that is not JSON: " + describe(r)) from None
    if not isinstance(body, dict) or "resourceType" not in body:
        if mt == FHIR_JSON:
            raise AssertionError("a FHIR JSON answer that is not a resource: " + describe(r))
        return  # plain JSON that is no resource, e.g. the SMART configuration
    validate(r.content, f"the answer to {r.request.method} {r.request.url} ({r.status_code})")


# --------------------------------------------------------------------------- answers


def is_fhir_json(r: requests.Response) -> bool:
    return media_type(r) == FHIR_JSON


def assert_fhir_json(r: requests.Response) -> None:
    ct = r.headers.get("Content-Type", "")
    assert media_type(r) == FHIR_JSON, "expected application/fhir+json: " + describe(r)
    params = {p.strip().lower() for p in ct.split(";")[1:]}
    assert not params or "charset=utf-8" in params, f"charset: {ct!r}"


def instant(value: str) -> datetime:
    assert isinstance(value, str) and INSTANT_MS_RE.match(value), f"not an instant with milliseconds in UTC: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def etag_version(r: requests.Response) -> int:
    tag = r.headers.get("ETag", "")
    m = ETAG_RE.match(tag)
    assert m, f'ETag {tag!r} is not W/"n": ' + describe(r)
    return int(m.group(1))


def assert_resource(r: requests.Response, status: int, rtype: str, *, version: int | None = None,
                    what: str = "") -> dict:  # fmt: skip
    """A stored resource in the answer: status, media type, id, meta, ETag, Last-Modified."""
    assert r.status_code == status, f"{what}: expected {status}: " + describe(r)
    assert_fhir_json(r)
    body = r.json()
    assert body.get("resourceType") == rtype, f"{what}: expected a {rtype}: " + describe(r)
    assert isinstance(body.get("id"), str) and UUID_RE.match(body["id"]), f"{what}: id is not a lowercase UUID: {body.get('id')!r}"
    meta = body.get("meta") or {}
    assert isinstance(meta.get("versionId"), str) and meta["versionId"].isdigit(), f"{what}: meta.versionId: {meta}"
    updated = instant(meta.get("lastUpdated"))
    if version is not None:
        assert meta["versionId"] == str(version), f"{what}: versionId {meta['versionId']} != {version}"
    assert etag_version(r) == int(meta["versionId"]), f"{what}: ETag {r.headers.get('ETag')} vs meta {meta}"
    lm = r.headers.get("Last-Modified")
    assert lm, f"{what}: no Last-Modified: " + describe(r)
    assert parsedate_to_datetime(lm) == updated.replace(microsecond=0), f"{what}: Last-Modified {lm} vs {meta['lastUpdated']}"
    return body


def assert_outcome(r: requests.Response, status: int | set[int], *, code: str | set[str] | None = None,
                   expression: str | None = None, what: str = "") -> dict:  # fmt: skip
    """An OperationOutcome with one of the statuses (never a 5xx); `code` names the issue
    code(s) one issue must have; `expression` a prefix one issue's expression must start with."""
    statuses = {status} if isinstance(status, int) else set(status)
    assert r.status_code < 500, f"{what}: server error: " + describe(r)
    assert r.status_code in statuses, f"{what}: expected {sorted(statuses)}: " + describe(r)
    assert_fhir_json(r)
    body = r.json()
    assert body.get("resourceType") == "OperationOutcome", f"{what}: not an OperationOutcome: " + describe(r)
    issues = body.get("issue") or []
    assert issues, f"{what}: an OperationOutcome without issues: " + describe(r)
    if r.status_code >= 400:
        assert any(i.get("severity") in ("error", "fatal") for i in issues), f"{what}: no error issue: {body}"
    if code is not None:
        codes = {code} if isinstance(code, str) else set(code)
        assert any(i.get("code") in codes for i in issues), f"{what}: no issue with code {sorted(codes)}: {body}"
    if expression is not None:
        found = [e for i in issues for e in (i.get("expression") or [])]
        assert any(e == expression or e.startswith(expression + ".") or e.startswith(expression + "[") for e in found), (
            f"{what}: no issue.expression at {expression!r} (found {found}): {body}"
        )
    return body


def assert_bundle(r: requests.Response, btype: str = "searchset", what: str = "") -> dict:
    assert r.status_code == 200, f"{what}: expected 200: " + describe(r)
    assert_fhir_json(r)
    body = r.json()
    assert body.get("resourceType") == "Bundle" and body.get("type") == btype, f"{what}: not a {btype} Bundle: " + describe(r)
    return body


def entries(bundle: dict, mode: str | None = "match") -> list[dict]:
    return [e for e in bundle.get("entry") or [] if mode is None or (e.get("search") or {}).get("mode") == mode]


def ids(bundle: dict, mode: str | None = "match") -> list[str]:
    return [e["resource"]["id"] for e in entries(bundle, mode)]


def link(bundle: dict, relation: str) -> str | None:
    for ln in bundle.get("link") or []:
        if ln.get("relation") == relation:
            return ln.get("url")
    return None


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def ref(rtype: str, rid: str) -> dict:
    return {"reference": f"{rtype}/{rid}"}


# --------------------------------------------------------------------------- the client

_NO_BODY = object()


class Records:
    """HTTP client for the records service's FHIR base (RECORDS_URL + /fhir)."""

    def __init__(self, stack: dict[str, str], instance: str | None = None):
        """instance: send every request to this one instance of a scaled-out records (its
        answers still name the deployment's base, RECORDS_URL, in fullUrl, Location and links)."""
        self.public = stack["RECORDS_URL"].rstrip("/")
        self.base = self.public + "/fhir"
        self.target = (instance or self.public).rstrip("/") + "/fhir"
        self.http = requests.Session()
        self.http.hooks["response"].append(check_fhir_response)

    def url(self, path: str) -> str:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        return self.target + url[len(self.base) :] if url.startswith(self.base) else url

    def request(self, method: str, path: str, token: str | None = None, *, resource: Any = _NO_BODY,
                data: bytes | str | None = None, headers: dict | None = None, params: Any = None,
                content_type: str | None = FHIR_JSON, accept: str | None = FHIR_JSON, **kw) -> requests.Response:  # fmt: skip
        h: dict[str, str] = {}
        if accept is not None:
            h["Accept"] = accept
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if resource is not _NO_BODY:
            data = json.dumps(resource).encode()
        if isinstance(data, str):
            data = data.encode()
        if data is not None and content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.url(path), data=data, headers=h, params=params, **kw)

    # -- interactions (raw answers)

    def create(self, rtype: str, resource: Any, token: str | None, *, headers: dict | None = None,
               if_none_exist: str | None = None, prefer: str | None = None, **kw) -> requests.Response:  # fmt: skip
        h = dict(headers or {})
        if if_none_exist is not None:
            h["If-None-Exist"] = if_none_exist
        if prefer is not None:
            h["Prefer"] = prefer
        body = {"data": resource} if isinstance(resource, (bytes, str)) else {"resource": resource}
        return self.request("POST", f"/{rtype}", token, headers=h, **body, **kw)

    def read(self, rtype: str, rid: str, token: str | None, **kw) -> requests.Response:
        return self.request("GET", f"/{rtype}/{rid}", token, **kw)

    def vread(self, rtype: str, rid: str, vid: int | str, token: str | None, **kw) -> requests.Response:
        return self.request("GET", f"/{rtype}/{rid}/_history/{vid}", token, **kw)

    def update(self, rtype: str, rid: str, resource: Any, token: str | None, *, if_match: str | int | None = None,
               prefer: str | None = None, headers: dict | None = None, **kw) -> requests.Response:  # fmt: skip
        h = dict(headers or {})
        if if_match is not None:
            h["If-Match"] = f'W/"{if_match}"' if isinstance(if_match, int) else if_match
        if prefer is not None:
            h["Prefer"] = prefer
        body = {"data": resource} if isinstance(resource, (bytes, str)) else {"resource": resource}
        return self.request("PUT", f"/{rtype}/{rid}", token, headers=h, **body, **kw)

    def delete(self, rtype: str, rid: str, token: str | None, *, if_match: str | int | None = None, **kw) -> requests.Response:
        h = {}
        if if_match is not None:
            h["If-Match"] = f'W/"{if_match}"' if isinstance(if_match, int) else if_match
        return self.request("DELETE", f"/{rtype}/{rid}", token, headers=h, **kw)

    def search(self, rtype: str, params: Any, token: str | None, *, strict: bool = False, headers: dict | None = None,
               **kw) -> requests.Response:  # fmt: skip
        h = dict(headers or {})
        if strict:
            h["Prefer"] = "handling=strict"
        return self.request("GET", f"/{rtype}", token, params=params, headers=h, **kw)

    def search_post(self, rtype: str, form: Any, token: str | None, *, params: Any = None, **kw) -> requests.Response:
        data = form if isinstance(form, (str, bytes)) else urlencode(form, doseq=True)
        return self.request("POST", f"/{rtype}/_search", token, data=data, params=params,
                            content_type="application/x-www-form-urlencoded", **kw)  # fmt: skip

    def history(self, rtype: str, rid: str | None, token: str | None, params: Any = None, **kw) -> requests.Response:
        path = f"/{rtype}/{rid}/_history" if rid else f"/{rtype}/_history"
        return self.request("GET", path, token, params=params, **kw)

    def get(self, url: str, token: str | None, **kw) -> requests.Response:
        return self.request("GET", url, token, **kw)

    # -- checked interactions

    def must_create(self, rtype: str, resource: dict, token: str, what: str = "") -> dict:
        r = self.create(rtype, resource, token)
        body = assert_resource(r, 201, rtype, version=1, what=what or f"create {rtype}")
        loc = r.headers.get("Location", "")
        assert loc == f"{self.base}/{rtype}/{body['id']}/_history/1", f"Location {loc!r}"
        return body

    def must_read(self, rtype: str, rid: str, token: str, what: str = "") -> dict:
        return assert_resource(self.read(rtype, rid, token), 200, rtype, what=what or f"read {rtype}/{rid}")

    def must_update(self, rtype: str, resource: dict, token: str, what: str = "", **kw) -> dict:
        r = self.update(rtype, resource["id"], resource, token, **kw)
        return assert_resource(r, 200, rtype, what=what or f"update {rtype}/{resource['id']}")

    def must_search(self, rtype: str, params: Any, token: str, what: str = "", **kw) -> dict:
        r = self.search(rtype, params, token, **kw)
        bundle = assert_bundle(r, what=what or f"search {rtype} {params}")
        self.check_entries(bundle)
        return bundle

    def check_entries(self, bundle: dict) -> None:
        for e in bundle.get("entry") or []:
            res = e.get("resource") or {}
            assert e.get("fullUrl") == f"{self.base}/{res.get('resourceType')}/{res.get('id')}", f"fullUrl: {e}"
            assert (e.get("search") or {}).get("mode") in ("match", "include"), f"search.mode: {e}"

    def search_ids(self, rtype: str, params: Any, token: str, **kw) -> list[str]:
        return ids(self.must_search(rtype, params, token, **kw))

    def pages(self, first: dict, token: str, max_pages: int = 60, between: Callable[[int], None] | None = None) -> list[dict]:
        """The first page and every page after it by following `next` (bounded)."""
        out = [first]
        while (nxt := link(out[-1], "next")) is not None:
            assert len(out) < max_pages, f"more than {max_pages} pages"
            assert nxt.startswith(self.base + "/"), f"next link {nxt!r} is not under {self.base}"
            if between:
                between(len(out))
            bundle = assert_bundle(self.get(nxt, token), what=f"page {len(out) + 1}")
            self.check_entries(bundle)
            out.append(bundle)
        return out


# --------------------------------------------------------------------------- resource builders


def new_system(label: str = "id") -> str:
    """An identifier/code system unique to this call: tests search by it and see only theirs."""
    return f"urn:e2e:{label}:{uuid.uuid4().hex}"


def letters(n: int = 10) -> str:
    """n random lower-case letters (for names that must be unique yet alphabetic)."""
    raw = uuid.uuid4().int
    out = []
    for _ in range(n):
        raw, k = divmod(raw, 26)
        out.append(chr(ord("a") + k))
    return "".join(out)


def patient_body(*, family: str | None = None, given: str | None = None, system: str | None = None,
                 value: str | None = None, gp: str | list[str] | None = None, birth_date: str | None = None,
                 gender: str | None = "female", **extra) -> dict:  # fmt: skip
    body: dict[str, Any] = {"resourceType": "Patient"}
    if system or value:
        body["identifier"] = [{"system": system or new_system("mrn"), "value": value or uuid.uuid4().hex[:12]}]
    body["name"] = [{"family": family or "E2e" + letters(8).title(), "given": [given or "Test"]}]
    if gender:
        body["gender"] = gender
    if birth_date:
        body["birthDate"] = birth_date
    if gp:
        body["generalPractitioner"] = [{"reference": g} for g in ([gp] if isinstance(gp, str) else gp)]
    body.update(extra)
    return body


def practitioner_body(*, family: str | None = None, given: str = "Doc", system: str | None = None,
                      value: str | None = None, **extra) -> dict:  # fmt: skip
    body: dict[str, Any] = {
        "resourceType": "Practitioner",
        "identifier": [{"system": system or new_system("npi"), "value": value or uuid.uuid4().hex[:12]}],
        "name": [{"family": family or "E2e" + letters(8).title(), "given": [given], "prefix": ["Dr"]}],
    }
    body.update(extra)
    return body


def report_body(subject: str, *, status: str = "preliminary", code: tuple[str, str] | None = None,
                system: str | None = None, value: str | None = None, effective: str | None = None,
                issued: str | None = None, performer: list[str] | None = None, category: tuple[str, str] | None = None,
                conclusion: str | None = None, presented: list[dict] | None = None, **extra) -> dict:  # fmt: skip
    """A DiagnosticReport about `subject` ("Patient/<id>")."""
    csys, ccode = code or ("http://loinc.org", "24323-8")
    body: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": status}
    if system or value:
        body["identifier"] = [{"system": system or new_system("acc"), "value": value or uuid.uuid4().hex[:12]}]
    if category:
        body["category"] = [{"coding": [{"system": category[0], "code": category[1]}]}]
    body["code"] = {"coding": [{"system": csys, "code": ccode}], "text": "E2E report"}
    body["subject"] = {"reference": subject}
    if effective:
        body["effectiveDateTime"] = effective
    if issued:
        body["issued"] = issued
    if performer:
        body["performer"] = [{"reference": p} for p in performer]
    if conclusion:
        body["conclusion"] = conclusion
    if presented:
        body["presentedForm"] = presented
    body.update(extra)
    return body


def binary_json(patient: str, content: bytes, content_type: str = "application/pdf") -> dict:
    return {
        "resourceType": "Binary",
        "contentType": content_type,
        "securityContext": {"reference": patient},
        "data": base64.b64encode(content).decode("ascii"),
    }


def sha1_b64(content: bytes) -> str:
    return base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")


def without_meta(resource: dict, *drop: str) -> dict:
    """The resource without server-managed parts: id, meta.versionId/lastUpdated (the rest of
    meta stays), and any extra top-level members named in `drop`."""
    out = {k: v for k, v in resource.items() if k not in ("id", *drop)}
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


# --------------------------------------------------------------------------- independent clients and data


def fhirpy_client(base: str, token: str | None) -> SyncFHIRClient:
    """fhirpy's client for a FHIR base (records', consent's or audit's) acting with `token`; every
    answer it gets passes fhirkit (check_fhir_response as a requests hook)."""
    return SyncFHIRClient(base, authorization=f"Bearer {token}" if token else None,
                          requests_config={"timeout": HTTP_TIMEOUT, "hooks": {"response": [check_fhir_response]}})  # fmt: skip


CAREBUNDLE_TYPES = ("Patient", "Practitioner", "DiagnosticReport")
# DiagnosticReport parts that point at resource types records does not store.
DROPPED_REPORT_PARTS = ("result", "encounter", "imagingStudy", "media", "specimen")


def carebundle_parts(bundle: dict) -> dict[str, list[tuple[str, dict]]]:
    """carebundle's transaction Bundle (as JSON: `json.loads(carebundle.to_json(b))`) as
    {type: [(fullUrl, resource)]} for the types records has, each checked by fhirkit."""
    assert bundle["resourceType"] == "Bundle", bundle.get("resourceType")
    out: dict[str, list[tuple[str, dict]]] = {t: [] for t in CAREBUNDLE_TYPES}
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] in CAREBUNDLE_TYPES:
            validate(r, f"carebundle's {r['resourceType']}")
            out[r["resourceType"]].append((e["fullUrl"], r))
    return out


# --------------------------------------------------------------------------- who acts


@dataclass
class Actor:
    """Someone the tests act as: a logged-in account or an OAuth client, and (for doctors and
    patients) the FHIR resource its `fhirUser` names."""

    name: str
    role: str
    token_fn: Callable[[], str]
    fhir_user: str | None = None
    resource: dict | None = None
    account: Any = None
    client: dict | None = None
    scopes: set[str] = field(default_factory=set)

    @property
    def token(self) -> str:
        return self.token_fn()

    @property
    def id(self) -> str:
        assert self.fhir_user, f"{self.name} has no fhirUser"
        return self.fhir_user.split("/", 1)[1]

    def __repr__(self) -> str:  # keeps tokens out of failure messages
        return f"Actor({self.name!r}, {self.fhir_user!r})"


class Actors:
    """Creates the accounts and clients the records tests act as, linked as the design guide
    says: the FHIR resource first (in records), then the account in identity with fhirUser."""

    def __init__(self, records: Records, identity: idl.Identity, admin: idl.AdminSession, users: idl.Users):
        self.records, self.identity, self.admin_session, self.users = records, identity, admin, users
        self._client_tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _user_token(self, account: idl.Account) -> Callable[[], str]:
        return lambda: self.users.token(account)

    def admin(self) -> Actor:
        return Actor("admin", "admin", lambda: self.admin_session.token, scopes=set(idl.ROLE_SCOPES["admin"]))

    def receptionist(self, fresh: bool = False) -> Actor:
        acct = self.users.staff("receptionist", label="desk", fhir=False) if fresh else self.users.receptionist()
        return Actor(f"receptionist {acct.username}", "receptionist", self._user_token(acct), account=acct,
                     scopes=set(idl.ROLE_SCOPES["receptionist"]))  # fmt: skip

    def _practitioner_account(self, role: str, practitioner: dict | None) -> Actor:
        """A Practitioner created in records by the admin, then a staff account for it."""
        prac = self.records.must_create("Practitioner", practitioner or practitioner_body(), self.admin_session.token,
                                        f"admin creating a {role}'s Practitioner")  # fmt: skip
        return self.linked(self.users.staff(role, label=role[:4], fhirUser=f"Practitioner/{prac['id']}"), prac)

    def linked(self, acct: idl.Account, resource: dict) -> Actor:
        """The Actor of an account whose fhirUser names `resource` (a Practitioner or Patient in records)."""
        fhir_user = f"{resource['resourceType']}/{resource['id']}"
        assert acct.fhir_user == fhir_user, acct.body
        return Actor(f"{acct.role} {acct.username}", acct.role, self._user_token(acct), fhir_user=fhir_user, resource=resource,
                     account=acct, scopes=set(idl.ROLE_SCOPES[acct.role]))  # fmt: skip

    def technologist(self, practitioner: dict | None = None) -> Actor:
        """A technologist linked like a doctor (Practitioner first, then the account)."""
        return self._practitioner_account("technologist", practitioner)

    def doctor(self, practitioner: dict | None = None) -> Actor:
        """A Practitioner created in records by the admin, then a doctor account for it."""
        return self._practitioner_account("doctor", practitioner)

    def patient(self, gp: Actor | None = None, body: dict | None = None) -> Actor:
        """A Patient created in records by a receptionist (generalPractitioner = gp's
        Practitioner), then its account (one-time password already changed)."""
        desk = self.users.receptionist_token()
        resource = body or patient_body(system=new_system("mrn"))
        if gp is not None:
            resource["generalPractitioner"] = [{"reference": gp.fhir_user}]
        pat = self.records.must_create("Patient", resource, desk, "receptionist creating a Patient")
        return self.linked(self.users.patient(fhirUser=f"Patient/{pat['id']}"), pat)

    def ehr(self, scopes: Iterable[str], trusted: bool, name: str = "E2E EHR") -> Actor:
        """An OAuth client of role `system` registered at identity by the admin."""
        scopes = list(scopes)
        org = f"Organization/{idl.fhir_id('org')}"
        body = {"name": name, "role": "system", "scopes": scopes, "organization": org, "trusted": trusted}
        r = self.identity.post("/clients", body, token=self.admin_session.token)
        assert r.status_code == 201, "registering an EHR client: " + idl.describe(r)
        client = r.json()
        cid, secret = client["clientId"], client["clientSecret"]

        def token() -> str:
            with self._lock:
                tok, until = self._client_tokens.get(cid, (None, 0.0))
            if tok is None or time.time() > until:
                ts = idl.token_set(self.identity.client_credentials(cid, secret), f"client_credentials for {cid}")
                tok, until = ts.access_token, time.time() + max(30, ts.expires_in - 60)
                with self._lock:
                    self._client_tokens[cid] = (tok, until)
            return tok

        return Actor(f"{'trusted' if trusted else 'untrusted'} EHR {cid}", "system", token, fhir_user=org,
                     client=client, scopes=set(scopes))  # fmt: skip


ALL_SYSTEM_SCOPES = tuple(f"system/{t}.cruds" for t in TYPES)
READ_SYSTEM_SCOPES = ("system/Patient.rs", "system/DiagnosticReport.rs", "system/Binary.r")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
