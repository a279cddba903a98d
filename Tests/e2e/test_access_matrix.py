"""The role and consent matrix across all five services: every operation of every
`openapi/*.yaml` × every kind of caller × the own and the other patient's resources.

The rule table (rule_table) names, for each operation (service, method, path template), who may use
it and what they then see; an operation in an OpenAPI document without a rule fails the test,
so a new endpoint cannot ship without deciding who may call it. Callers: no token, the admin,
doctors (treating the patient, not treating, holding the patient's consent, under break-glass),
a receptionist, a technologist, the patient, another patient (same doctor), trusted and
untrusted EHR clients (one of them with the patient's consent) and the stack's script client.
Side "A" is the patient's own data (patient, reports, Binary, Provenance, Consent, AuditEvent,
break-glass session, account), side "B" another patient's.

A case passes when an allowed call succeeds (2xx; a search then returns exactly what the
caller may see) and a refused one answers 401/403/404 as the service's rules say, as an
OperationOutcome under /fhir and problem+json elsewhere (401s with WWW-Authenticate). Every
FHIR answer is checked by fhirkit. The number of cases is printed and must not shrink.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import auditlib as aud
import consentlib as cl
import identitylib as idl
import pytest
import recordslib as rl
import requests
import subscriptionlib as sl
import websocket
import yaml
from e2e_support import repo_root, service_token

SERVICES = ("identity", "records", "consent", "audit", "ledger")
CALLERS = ("anonymous", "admin", "doctor_treating", "doctor_not_treating", "doctor_consent", "doctor_break_glass",
           "receptionist", "technologist", "patient", "other_patient", "ehr_trusted", "ehr_untrusted", "ehr_consented",
           "service")  # fmt: skip
# The matrix had this many cases when it was written; fewer means operations, callers or targets went missing.
MIN_CASES = 2926
WORKERS = 6
REASON = "access matrix: unconscious patient in the emergency room, history needed now"
LAB = ("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")


def operations() -> list[tuple[str, str, str]]:
    """(service, METHOD, path template) of every operation the OpenAPI documents publish."""
    out = []
    for service in SERVICES:
        doc = yaml.safe_load((repo_root() / "openapi" / f"{service}.yaml").read_text())
        for path, item in doc["paths"].items():
            for method in item:
                if method in ("get", "post", "put", "patch", "delete", "head", "options"):
                    out.append((service, method.upper(), path))
    return out


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    """What a case must answer: `allowed` cases one of `statuses` (2xx, or the validation error a
    deliberately incomplete body earns once authorised); refused ones one of `statuses` (4xx).
    `check` returns problems with an allowed answer (a search showing what it may not)."""

    allowed: bool
    statuses: frozenset[int]
    check: Callable[[requests.Response], list[str]] | None = None


def allow(*statuses: int, check=None) -> Expect:
    return Expect(True, frozenset(statuses or (200,)), check)


def refuse(*statuses: int) -> Expect:
    return Expect(False, frozenset(statuses))


UNAUTHENTICATED = refuse(401)
FORBIDDEN = refuse(403)
NOT_FOUND = refuse(404)


@dataclass
class Target:
    """What one case addresses: the path parameters, the patient side (A, B or "-") and, for
    writes, a body or a function that prepares one when the case runs."""

    label: str
    side: str = "-"
    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] | None = None
    res: Any = None  # the world resource the path names, for the visibility oracle


@dataclass
class Rule:
    """Who may use one operation: targets(world) lists what the cases address; expect(world,
    caller, target) says what each caller must get; send(world, caller, target, path) makes the
    request (the default: the method on the filled-in path with the caller's token)."""

    targets: Callable[[Any], list[Target]]
    expect: Callable[[Any, rl.Actor, Target], Expect]
    send: Callable[..., requests.Response] | None = None
    phase: int = 0  # 0 reads (run in parallel), 1 writes, 2 writes that change access (last)


@dataclass
class Case:
    op: tuple[str, str, str]
    caller: str
    target: Target
    expect: Expect
    rule: Rule


# --------------------------------------------------------------------------- the oracles


def scope_allows(actor: rl.Actor, rtype: str, letter: str) -> bool:
    """SMART v2: a `{context}/{Type|*}.{cruds}` scope of the caller covers `letter` on `rtype`."""
    for scope in actor.scopes:
        head, _, perms = scope.partition(".")
        context, _, stype = head.partition("/")
        if context in ("user", "patient", "system") and stype in (rtype, "*") and letter in perms:
            return True
    return False


@dataclass(frozen=True)
class Res:
    """A world resource as the oracle sees it."""

    type: str
    id: str
    side: str
    released: bool = True  # final report, or a Binary/Provenance of one (what patients and grants open)
    author: str | None = None
    patient: str | None = None  # Consent: whose; break-glass: about whom
    actor: str | None = None  # Consent: to whom; break-glass: whose session


def sees(w, c: rl.Actor, res: Res) -> bool:
    """The design guide's compartments: may this caller read this records resource?"""
    if res.type == "Practitioner":
        return True
    role, side = c.role, res.side
    if role == "receptionist":
        return res.type == "Patient"
    if role == "technologist":
        return res.type == "Patient" or res.author == c.fhir_user
    if role == "doctor":
        full = side == "A" and c in (w.callers["doctor_treating"], w.callers["doctor_break_glass"])
        granted = side == "A" and c is w.callers["doctor_consent"]
        return full or (granted and (res.type == "Patient" or res.released))
    if role == "patient":
        return c.fhir_user == w.patients[side].fhir_user and (res.type == "Patient" or res.released)
    if role == "system":
        if c is w.callers["ehr_trusted"]:
            return True
        return side == "A" and c is w.callers["ehr_consented"] and (res.type == "Patient" or res.released)
    return False


def fhir_read(rtype: str, letter: str = "r"):
    def expect(w, c, t: Target) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not scope_allows(c, rtype, letter):
            return FORBIDDEN
        return allow() if sees(w, c, t.res) else NOT_FOUND

    return expect


def fhir_search(rtype: str):
    """Searches name one world resource (by _id, or a report's patient/target): the Bundle holds
    exactly the world resources the caller may see."""

    def expect(w, c, t: Target) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not scope_allows(c, rtype, "s"):
            return FORBIDDEN
        want = {r.id for r in t.res if sees(w, c, r)}
        return allow(check=lambda r: bundle_is(r, want))

    return expect


def bundle_is(r: requests.Response, want: set[str]) -> list[str]:
    bundle = r.json()
    got = set(rl.ids(bundle))
    out = []
    if got - want:
        out.append(f"UNAUTHORIZED RESULTS {sorted(got - want)}")
    if want - got:
        out.append(f"missing results {sorted(want - got)}")
    if "total" in bundle and bundle["total"] != len(got):
        out.append(f"total {bundle['total']} != {len(got)} matches")
    return out


def fhir_history(rtype: str):
    """Type history since the world was made: of the world's resources, only visible ones."""

    def expect(w, c, t: Target) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not scope_allows(c, rtype, "s"):
            return FORBIDDEN
        world = {r.id for r in w.all if r.type == rtype}
        want = {r.id for r in w.all if r.type == rtype and sees(w, c, r)}

        def check(r):
            got = {e["resource"]["id"] for e in r.json().get("entry") or [] if "resource" in e} & world
            return [f"UNAUTHORIZED RESULTS {sorted(got - want)}"] if got - want else []

        return allow(check=check)

    return expect


def by_role(table: dict[str, Expect | Callable], default: Expect = FORBIDDEN):
    """An expectation by the caller's role, a function (w, c, t) -> Expect or an Expect;
    anonymous callers always get 401."""

    def expect(w, c, t: Target) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        e = table.get(c.role, default)
        return e(w, c, t) if callable(e) else e

    return expect


def public(w, c, t) -> Expect:
    return allow()


# --------------------------------------------------------------------------- the world


@pytest.fixture(scope="module")
def world(stack, records, actors, identity, admin, rec_admin, ehr_trusted, ehr_untrusted):
    consent, audit = cl.Consent(stack), aud.Audit(stack)
    w = SimpleNamespace(stack=stack, records=records, consent=consent, audit=audit, identity=identity, admin=admin)
    w.start = rl.now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    gp_a, gp_b, doc_y = actors.doctor(), actors.doctor(), actors.doctor()
    pat_a, pat_b = actors.patient(gp=gp_a), actors.patient(gp=gp_b)
    tech, tech_b = actors.technologist(), actors.technologist()
    w.callers = {
        "anonymous": rl.Actor("anonymous", "anonymous", lambda: None),
        "admin": rec_admin,
        "doctor_treating": gp_a,
        "doctor_not_treating": actors.doctor(),
        "doctor_consent": actors.doctor(),
        "doctor_break_glass": actors.doctor(),
        "receptionist": actors.receptionist(fresh=True),
        "technologist": tech,
        "patient": pat_a,
        "other_patient": actors.patient(gp=gp_a),
        "ehr_trusted": ehr_trusted,
        "ehr_untrusted": ehr_untrusted,
        "ehr_consented": actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False, name="E2E matrix consented EHR"),
        "service": rl.Actor("script client", "service", lambda: service_token(stack), scopes=set(idl.SERVICE_SCOPES)),
    }
    assert tuple(w.callers) == CALLERS
    for actor in w.callers.values():
        actor.token  # logged in before the cases run in parallel
    w.patients = {"A": pat_a, "B": pat_b}
    w.doc_y = doc_y
    w.prac = records.must_create("Practitioner", rl.practitioner_body(), rec_admin.token)

    w.res: dict[str, dict[str, Res]] = {}
    w.all: list[Res] = []

    def keep(key: str, side: str, res: Res) -> Res:
        w.res.setdefault(key, {})[side] = res
        w.all.append(res)
        return res

    keep("Practitioner", "-", Res("Practitioner", w.prac["id"], "-"))
    for side, gp, tk in (("A", gp_a, tech), ("B", gp_b, tech_b)):
        pat = w.patients[side]
        keep("Patient", side, Res("Patient", pat.id, side))
        binary = records.must_create("Binary", rl.binary_json(pat.fhir_user, b"%PDF-1.4 matrix " + side.encode()), tk.token)
        keep("Binary", side, Res("Binary", binary["id"], side, author=tk.fhir_user))
        final = records.must_create("DiagnosticReport", rl.report_body(pat.fhir_user, status="final", category=LAB,
                                                                        presented=[{"url": f"Binary/{binary['id']}"}]), gp.token)  # fmt: skip
        keep("final", side, Res("DiagnosticReport", final["id"], side, author=gp.fhir_user))
        prelim = records.must_create("DiagnosticReport", rl.report_body(pat.fhir_user), tk.token)
        keep("prelim", side, Res("DiagnosticReport", prelim["id"], side, released=False, author=tk.fhir_user))
        prov = records.must_search("Provenance", {"target": f"DiagnosticReport/{final['id']}"}, gp.token)
        assert len(rl.ids(prov)) == 1, prov
        keep("Provenance", side, Res("Provenance", rl.ids(prov)[0], side))
        prov = records.must_search("Provenance", {"target": f"DiagnosticReport/{prelim['id']}"}, gp.token)
        keep("Provenance-prelim", side, Res("Provenance", rl.ids(prov)[0], side, released=False))

    # Consents: A grants a doctor and an EHR's Organization everything; B grants doc_y.
    grants = (("A", w.callers["doctor_consent"]), ("A", w.callers["ehr_consented"]), ("B", doc_y))
    for n, (side, grantee) in enumerate(grants):
        pat = w.patients[side]
        c = consent.create(cl.consent_body(pat.fhir_user, grantee.fhir_user), pat.token)
        keep("Consent" if n != 1 else "Consent-org", side, Res("Consent", c["id"], side, patient=pat.fhir_user, actor=grantee.fhir_user))
    # Break-glass: on A by its doctor, on B by doc_y.
    for side, doctor in (("A", w.callers["doctor_break_glass"]), ("B", doc_y)):
        r = consent.break_glass(doctor.token, w.patients[side].fhir_user, REASON)
        assert r.status_code == 201, rl.describe(r)
        keep("break-glass", side, Res("break-glass", r.json()["id"], side, patient=w.patients[side].fhir_user, actor=doctor.fhir_user))

    # Accounts and clients at identity.
    w.accounts = {"A": pat_a.account.id, "B": pat_b.account.id, "staff": gp_a.account.id}
    r = identity.post("/clients", {"name": "E2E matrix spare", "role": "system", "scopes": ["system/Patient.rs"],
                                   "organization": f"Organization/{idl.fhir_id('org')}", "trusted": False}, token=admin.token)  # fmt: skip
    assert r.status_code == 201, idl.describe(r)
    w.spare_client = r.json()["clientId"]
    w.org = ehr_trusted.fhir_user.split("/", 1)[1]

    # Audit events about each side (the creation of its final report), once delivered.
    for side in "AB":
        found = audit.wait_for({"entity": f"DiagnosticReport/{w.res['final'][side].id}", "subtype": "create"}, admin.token)
        assert found, f"the creation of side {side}'s report never reached audit"
        keep("AuditEvent", side, Res("AuditEvent", found[0]["id"], side, patient=w.patients[side].fhir_user))

    # The ledger's size now (public reads name entries and sizes that exist).
    w.ledger_size = int(requests.get(stack["LEDGER_URL"] + "/checkpoint", timeout=30).text.splitlines()[1])

    # Grants and break-glass reach records within the consent cache bound.
    for who, key in (("doctor_consent", "final"), ("ehr_consented", "final"), ("doctor_break_glass", "prelim")):
        rid = w.res[key]["A"].id
        cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", rid, w.callers[who].token),
                      cl.REVOCATION_BOUND + cl.POLL_SLACK, f"{who}'s access reaching records")  # fmt: skip

    # Subscriptions on A's reports, one of each kind of subscriber (owner caller -> id).
    w.subs = {owner: new_subscription(w, w.callers[owner], "A") for owner in SUBSCRIPTION_OWNERS}
    return w


# --------------------------------------------------------------------------- requests

_local = threading.local()


def http() -> requests.Session:
    """A session per thread; every FHIR answer is checked by fhirkit."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
        _local.session.hooks["response"].append(rl.check_fhir_response)
    return _local.session


def url(w, service: str, path: str) -> str:
    return w.stack[f"{service.upper()}_URL"].rstrip("/") + path


def request(w, c: rl.Actor, method: str, service: str, path: str, *, body: Any = None, form: dict | None = None,
            query: dict | None = None, headers: dict | None = None) -> requests.Response:  # fmt: skip
    h = {"Accept": rl.FHIR_JSON} if path.startswith("/fhir") else {}
    token = c.token
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = rl.FHIR_JSON if path.startswith("/fhir") else "application/json"
    elif form is not None:
        data = form
    h.update(headers or {})
    return http().request(method, url(w, service, path), data=data, params=query, headers=h, timeout=120)


def side_targets(key: str, **params_of) -> Callable[[Any], list[Target]]:
    """One target per side of world resource `key`; params_of maps a path parameter to a
    function of the Res (default {id} = its id, {vid} = 1)."""

    def targets(w) -> list[Target]:
        out = []
        for side, res in w.res[key].items():
            params = {"id": res.id, "vid": 1}
            params.update({k: f(res) for k, f in params_of.items()})
            out.append(Target(f"{key} {side}", side, params, res=res))
        return out

    return targets


def report_targets(w) -> list[Target]:
    return side_targets("final")(w) + side_targets("prelim")(w)


def one(label: str = "-", **params) -> Callable[[Any], list[Target]]:
    return lambda w: [Target(label, "-", params)]


def search_targets(rtype: str, param: str, keys: tuple[str, ...], value=lambda res, w, side: res.id):
    """Per side: a search by `param` naming that side's resource(s)."""

    def targets(w) -> list[Target]:
        out = []
        for side in ("A", "B"):
            found = [w.res[k][side] for k in keys]
            out.append(Target(f"{rtype}?{param} {side}", side, query={param: value(found[0], w, side)}, res=found))
        return out

    return targets


def current(w, rtype: str, rid: str) -> dict:
    """The current version of a records resource, as the trusted EHR reads it."""
    reader = w.callers["ehr_trusted"] if rtype != "Practitioner" else w.callers["admin"]
    return rl.without_meta(w.records.must_read(rtype, rid, reader.token), "text") | {"id": rid}


# --------------------------------------------------------------------------- records rules


def rec_update_send(rtype: str):
    def send(w, c, t, path):
        return request(w, c, "PUT", "records", path, body=current(w, rtype, t.params["id"]))

    return send


def rec_create(rtype: str):
    def body(w, side: str) -> dict:
        pat = w.patients[side].fhir_user if side in w.patients else None
        return {
            "Patient": lambda: rl.patient_body(),
            "Practitioner": lambda: rl.practitioner_body(),
            "DiagnosticReport": lambda: rl.report_body(pat),
            "Binary": lambda: rl.binary_json(pat, b"matrix upload"),
        }[rtype]()

    def send(w, c, t, path):
        return request(w, c, "POST", "records", path, body=body(w, t.side))

    def targets(w):
        return [Target(f"new {rtype} for {s}", s) for s in ("A", "B")] if rtype in ("DiagnosticReport", "Binary") else [Target(f"new {rtype}")]

    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not scope_allows(c, rtype, "c"):
            return FORBIDDEN
        if rtype in ("DiagnosticReport", "Binary"):
            if c.role == "technologist" or c is w.callers["ehr_trusted"]:
                return allow(201)
            if c.role == "doctor":
                treating = t.side == "A" and c is w.callers["doctor_treating"]
                return allow(201) if treating else refuse(403, 404, 422)
        return allow(201)

    return Rule(targets, expect, send, phase=1)


def rec_update(rtype: str, targets):
    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if rtype == "Binary":
            return refuse(403, 405)  # content is immutable: a new Binary instead
        if not scope_allows(c, rtype, "u"):
            return FORBIDDEN
        if rtype == "DiagnosticReport":
            res = t.res
            if c.role == "technologist":
                return allow() if res.author == c.fhir_user else NOT_FOUND
            if c.role == "doctor":
                if t.side == "A" and c is w.callers["doctor_treating"]:
                    return allow()
                return refuse(403, 404) if sees(w, c, res) else NOT_FOUND  # consent and break-glass grant reading only
        return allow()

    return Rule(targets, expect, rec_update_send(rtype), phase=1)


def rec_delete(rtype: str, targets, make_spare: Callable | None = None):
    """Deletes that are allowed act on a spare resource made for the case."""

    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not scope_allows(c, rtype, "d"):
            return FORBIDDEN
        return allow(204) if (t.res is None or sees(w, c, t.res)) else NOT_FOUND

    def send(w, c, t, path):
        if make_spare is not None and expect(w, c, t).allowed:
            path = path.replace(t.params["id"], make_spare(w))
        return request(w, c, "DELETE", "records", path)

    return Rule(targets, expect, send, phase=1)


def spare_patient(w) -> str:
    return w.records.must_create("Patient", rl.patient_body(), w.callers["receptionist"].token)["id"]


def spare_practitioner(w) -> str:
    return w.records.must_create("Practitioner", rl.practitioner_body(), w.callers["admin"].token)["id"]


def post_search(service: str):
    """POST …/_search: the search's parameters as a form."""

    def send(w, c, t, path):
        return request(w, c, "POST", service, path, form=urlencode(t.query), headers={"Content-Type": "application/x-www-form-urlencoded"})

    return send


def history_target(w) -> list[Target]:
    return [Target("since the world", "-", query={"_since": w.start, "_count": "1000"})]


def erase_rule() -> Rule:
    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        return allow() if "medledger/erase" in c.scopes else FORBIDDEN

    def send(w, c, t, path):
        if expect(w, c, t).allowed:
            path = path.replace(t.params["id"], spare_patient(w))
        return request(w, c, "POST", "records", path)

    return Rule(side_targets("Patient"), expect, send, phase=1)


def practitioner_target(w) -> list[Target]:
    res = w.res["Practitioner"]["-"]
    return [Target("Practitioner", "-", {"id": res.id, "vid": 1}, res=res)]


def records_rules() -> dict:
    R: dict[tuple[str, str, str], Rule] = {}
    pub = Rule(one(), public)
    R["GET", "/fhir/metadata"] = pub
    R["GET", "/fhir/.well-known/smart-configuration"] = pub
    per_type = {
        "Patient": side_targets("Patient"),
        "Practitioner": practitioner_target,
        "DiagnosticReport": report_targets,
        "Binary": side_targets("Binary"),
    }
    searches = {
        "Patient": search_targets("Patient", "_id", ("Patient",), lambda r, w, s: r.id),
        "Practitioner": lambda w: [Target("Practitioner?_id", "-", query={"_id": w.prac["id"]}, res=[w.res["Practitioner"]["-"]])],
        "DiagnosticReport": search_targets("DiagnosticReport", "patient", ("final", "prelim"), lambda r, w, s: w.patients[s].fhir_user),
        "Binary": search_targets("Binary", "_id", ("Binary",)),
    }
    for rtype, targets in per_type.items():
        base = f"/fhir/{rtype}"
        R["GET", base] = Rule(searches[rtype], fhir_search(rtype))
        R["POST", f"{base}/_search"] = Rule(searches[rtype], fhir_search(rtype), post_search("records"))
        R["GET", f"{base}/_history"] = Rule(history_target, fhir_history(rtype))
        R["POST", base] = rec_create(rtype)
        for suffix in ("/{id}", "/{id}/_history", "/{id}/_history/{vid}", "/{id}/$verify", "/{id}/_history/{vid}/$verify"):
            R["GET", base + suffix] = Rule(targets, fhir_read(rtype))
        R["PUT", f"{base}/{{id}}"] = rec_update(rtype, targets)
        spare = {"Patient": spare_patient, "Practitioner": spare_practitioner}.get(rtype)
        R["DELETE", f"{base}/{{id}}"] = rec_delete(rtype, targets, spare)
    prov_targets = lambda w: side_targets("Provenance")(w) + side_targets("Provenance-prelim")(w)  # noqa: E731
    prov_search = search_targets("Provenance", "target", ("Provenance",), lambda r, w, s: f"DiagnosticReport/{w.res['final'][s].id}")
    R["GET", "/fhir/Provenance"] = Rule(prov_search, fhir_search("Provenance"))
    R["POST", "/fhir/Provenance/_search"] = Rule(prov_search, fhir_search("Provenance"), post_search("records"))
    R["GET", "/fhir/Provenance/{id}"] = Rule(prov_targets, fhir_read("Provenance"))
    R["POST", "/fhir/Patient/{id}/$erase"] = erase_rule()
    R["POST", "/fhir/$verify-all"] = Rule(one(), by_role({"admin": allow()}), phase=1)
    R.update(subscription_rules())
    return R


# --------------------------------------------------------------------------- records: Subscriptions

SUBSCRIPTION_OWNERS = ("patient", "doctor_treating", "ehr_trusted")


def subscription_body(w, side: str) -> dict:
    """A websocket Subscription on a side's final reports: the matrix's writes send no POSTs."""
    return sl.subscription_body(f"DiagnosticReport?patient={w.patients[side].fhir_user}&status=final", None,
                                channel="websocket", content=None, reason="e2e access matrix")  # fmt: skip


def new_subscription(w, owner: rl.Actor, side: str) -> str:
    r = w.records.create("Subscription", subscription_body(w, side), owner.token)
    assert r.status_code == 201, rl.describe(r)
    return r.json()["id"]


def may_subscribe(c) -> bool:
    """Doctors, patients and EHR clients that may read reports; not admins, receptionists,
    technologists or MedLedger's services."""
    return c.role in ("doctor", "patient", "system") and scope_allows(c, "DiagnosticReport", "r")


def subscribe(w, c, t) -> Expect:
    """Criteria pinned to a patient need that patient readable by the caller now."""
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if not may_subscribe(c):
        return FORBIDDEN
    return allow(201) if sees(w, c, w.res["Patient"][t.side]) else FORBIDDEN


def subscribe_send(w, c, t, path):
    r = request(w, c, "POST", "records", path, body=subscription_body(w, t.side))
    if r.status_code == 201:  # gone at once: later cases see the world's subscriptions only
        gone = w.records.delete("Subscription", r.json()["id"], c.token)
        assert gone.status_code in (200, 204), rl.describe(gone)
    return r


def subscription_targets(w) -> list[Target]:
    return [Target(f"Subscription of {owner}", "A", {"id": sid}, res=owner) for owner, sid in w.subs.items()]


def own_subscription(*ok: int):
    """Only its owner sees a subscription (others: 404); roles that may not subscribe are refused."""

    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if not may_subscribe(c):
            return refuse(403, 404)
        return allow(*ok) if w.callers[t.res] is c else NOT_FOUND

    return expect


def subscription_search(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if not may_subscribe(c):
        return FORBIDDEN
    world = set(w.subs.values())
    own = {sid for owner, sid in w.subs.items() if w.callers[owner] is c}

    def check(r):
        got = set(rl.ids(r.json())) & world
        return ([f"UNAUTHORIZED RESULTS {sorted(got - own)}"] if got - own else []) + (
            [f"missing results {sorted(own - got)}"] if own - got else [])  # fmt: skip

    return allow(check=check)


def subscription_update_send(w, c, t, path):
    owner = w.callers[t.res]
    stored = w.records.read("Subscription", t.params["id"], owner.token).json()
    return request(w, c, "PUT", "records", path, body=rl.without_meta(stored) | {"id": t.params["id"], "reason": "e2e access matrix, renamed"})


def subscription_delete_send(w, c, t, path):
    if own_subscription()(w, c, t).allowed:  # the owner deletes a spare one of its own
        path = f"/fhir/Subscription/{new_subscription(w, c, 'A')}"
    return request(w, c, "DELETE", "records", path)


def websocket_send(w, c, t, path):
    """The R4 websocket upgrade with the caller's token: 101 as a requests.Response when it
    happens; when it is refused (a bare 400, see openapi/records.yaml), the same GET without
    the upgrade headers, which says why."""
    try:
        sl.ws_connect(w.stack["RECORDS_URL"], c.token).close()
    except websocket.WebSocketBadStatusException as e:
        if e.status_code != 400 or e.resp_body:
            raise AssertionError(f"a refused upgrade answered {e.status_code} {e.resp_headers} {e.resp_body!r}") from None
        return request(w, c, "GET", "records", path)
    r = requests.Response()
    r.request = requests.Request("GET", url(w, "records", path)).prepare()
    r.url, r.status_code, r._content = r.request.url, 101, b""
    return r


def websocket_expect(w, c, t) -> Expect:
    """Only callers who may subscribe open the websocket; others learn why from the plain GET."""
    if c.role == "anonymous":
        return UNAUTHENTICATED
    return allow(101) if may_subscribe(c) else FORBIDDEN


def subscription_rules() -> dict:
    R: dict[tuple[str, str], Rule] = {}
    R["POST", "/fhir/Subscription"] = Rule(lambda w: [Target(f"criteria on {s}", s) for s in "AB"], subscribe, subscribe_send, phase=1)
    R["GET", "/fhir/Subscription"] = Rule(lambda w: [Target("own", query={"_count": "100"})], subscription_search)
    R["GET", "/fhir/Subscription/{id}"] = Rule(subscription_targets, own_subscription())
    R["GET", "/fhir/Subscription/{id}/$status"] = Rule(subscription_targets, own_subscription())
    R["PUT", "/fhir/Subscription/{id}"] = Rule(subscription_targets, own_subscription(), subscription_update_send, phase=1)
    R["DELETE", "/fhir/Subscription/{id}"] = Rule(subscription_targets, own_subscription(200, 204), subscription_delete_send, phase=1)
    R["GET", "/.well-known/jwks.json"] = Rule(one(), public)
    R["GET", "/fhir/websocket"] = Rule(one(), websocket_expect, websocket_send)
    return R


# --------------------------------------------------------------------------- consent rules


def consent_visible(w, c, res: Res) -> bool:
    """ConsentAccess: receptionists all, patients their own, doctors and EHR systems those naming them."""
    if c.role == "receptionist":
        return True
    if c.role == "patient":
        return res.patient == c.fhir_user
    if c.role in ("doctor", "system"):
        return res.actor == c.fhir_user
    return False


def no_consents(c) -> bool:
    """Admins, technologists and MedLedger's services see no consent at all: one named by id
    answers 404, as if it did not exist (the scope check comes after)."""
    return c.role in ("admin", "technologist", "service")


def consent_read(letter: str = "r"):
    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if no_consents(c):
            return NOT_FOUND
        if not scope_allows(c, "Consent", letter):
            return FORBIDDEN
        return allow() if consent_visible(w, c, t.res) else NOT_FOUND

    return expect


def consent_search(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if not scope_allows(c, "Consent", "s"):
        return FORBIDDEN
    want = {r.id for r in t.res if consent_visible(w, c, r)}
    return allow(check=lambda r: bundle_is(r, want))


def consent_search_targets(w) -> list[Target]:
    return [Target(f"Consent?patient {s}", s, query={"patient": w.patients[s].fhir_user},
                   res=[r for r in w.all if r.type == "Consent" and r.side == s]) for s in "AB"]  # fmt: skip


def consent_targets(w) -> list[Target]:
    return side_targets("Consent")(w)


def spare_consent(w, side: str) -> str:
    """A consent of the side's patient, recorded by the receptionist, naming doc_y (no caller)."""
    body = cl.consent_body(w.patients[side].fhir_user, w.doc_y.fhir_user)
    return w.consent.create(body, w.callers["receptionist"].token, "a spare consent")["id"]


def consent_write(letter: str):
    def expect(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        if letter != "c" and no_consents(c):
            return NOT_FOUND
        if not scope_allows(c, "Consent", letter):
            return FORBIDDEN
        if letter == "c":
            mine = c.role == "receptionist" or c.fhir_user == w.patients[t.side].fhir_user
            return allow(201) if mine else FORBIDDEN
        return allow(200, 204) if consent_visible(w, c, t.res) else NOT_FOUND

    def send(w, c, t, path):
        if letter == "c":
            body = cl.consent_body(w.patients[t.side].fhir_user, w.doc_y.fhir_user)
            return request(w, c, "POST", "consent", path, body=body)
        cid = t.params["id"]
        if letter == "d" and expect(w, c, t).allowed:
            cid = spare_consent(w, t.side)
            path = f"/fhir/Consent/{cid}"
        if letter == "u":
            stored = w.consent.fhir("GET", f"/Consent/{cid}", w.callers["receptionist"].token).json()
            return request(w, c, "PUT", "consent", path, body=rl.without_meta(stored) | {"id": cid})
        return request(w, c, "DELETE", "consent", path)

    targets = (lambda w: [Target(f"new Consent of {s}", s) for s in "AB"]) if letter == "c" else consent_targets
    return Rule(targets, expect, send, phase=1)


def bg_visible(w, c, res: Res) -> bool | None:
    """Break-glass sessions: a doctor their own, a patient those about them, admins all; None: 403."""
    if c.role == "doctor":
        return res.actor == c.fhir_user
    if c.role == "patient":
        return res.patient == c.fhir_user
    if c.role == "admin":
        return True
    return None


def bg_read(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    v = bg_visible(w, c, t.res)
    return FORBIDDEN if v is None else allow() if v else NOT_FOUND


def bg_list(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if bg_visible(w, c, t.res[0]) is None:
        return FORBIDDEN
    want = {r.id for r in t.res if bg_visible(w, c, r)}

    def check(r):
        got = {s["id"] for s in r.json()["sessions"]}
        return ([f"UNAUTHORIZED RESULTS {sorted(got - want)}"] if got - want else []) + (
            [f"missing results {sorted(want - got)}"] if want - got else [])  # fmt: skip

    return allow(check=check)


def bg_start(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    return allow(201) if c.role == "doctor" else FORBIDDEN


def bg_start_send(w, c, t, path):
    r = request(w, c, "POST", "consent", path, body={"patient": w.patients[t.side].fhir_user, "reason": REASON})
    if r.status_code == 201:  # end it at once: the matrix's callers keep their access as they were
        end = w.consent.json("DELETE", f"/break-glass/{r.json()['id']}", c.token)
        assert end.status_code == 200, rl.describe(end)
    return r


def bg_end(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if c.role != "doctor":
        return FORBIDDEN
    return allow() if t.res.actor == c.fhir_user else NOT_FOUND


def bg_end_send(w, c, t, path):
    if bg_end(w, c, t).allowed:  # a second session of the same doctor, ended by the case
        r = w.consent.break_glass(c.token, w.patients[t.side].fhir_user, REASON)
        assert r.status_code == 201, rl.describe(r)
        path = f"/break-glass/{r.json()['id']}"
    return request(w, c, "DELETE", "consent", path)


def consent_rules() -> dict:
    R: dict[tuple[str, str, str], Rule] = {}
    R["GET", "/fhir/metadata"] = Rule(one(), public)
    R["GET", "/fhir/Consent"] = Rule(consent_search_targets, consent_search)

    R["POST", "/fhir/Consent/_search"] = Rule(consent_search_targets, consent_search, post_search("consent"))
    R["POST", "/fhir/Consent"] = consent_write("c")
    for suffix in ("/{id}", "/{id}/_history", "/{id}/_history/{vid}"):
        R["GET", "/fhir/Consent" + suffix] = Rule(consent_targets, consent_read())
    R["PUT", "/fhir/Consent/{id}"] = consent_write("u")
    R["DELETE", "/fhir/Consent/{id}"] = consent_write("d")

    def decide(w, c, t, path):
        a = w.patients[t.side]
        body = {"actor": w.callers["doctor_consent"].fhir_user, "patient": a.fhir_user, "action": "read"}
        return request(w, c, "POST", "consent", path, body=body)

    service_only = by_role({"service": allow()})
    R["POST", "/decisions"] = Rule(lambda w: [Target(f"decision about {s}", s) for s in "AB"], service_only, decide)
    R["GET", "/grants"] = Rule(lambda w: [Target("grants", "-", query={"actor": w.callers["doctor_consent"].fhir_user})], service_only)
    R["POST", "/break-glass"] = Rule(lambda w: [Target(f"break-glass on {s}", s) for s in "AB"], bg_start, bg_start_send, phase=2)
    R["GET", "/break-glass"] = Rule(lambda w: [Target(f"sessions of {s}", s, query={"patient": w.patients[s].fhir_user},
                                                      res=[w.res["break-glass"][s]]) for s in "AB"], bg_list)  # fmt: skip
    R["GET", "/break-glass/{id}"] = Rule(side_targets("break-glass"), bg_read)
    R["DELETE", "/break-glass/{id}"] = Rule(side_targets("break-glass"), bg_end, bg_end_send, phase=1)
    return R


# --------------------------------------------------------------------------- audit rules


def audit_read(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if c.role == "admin":
        return allow()
    if c.role == "patient":
        return allow() if t.res.patient == c.fhir_user else NOT_FOUND
    return NOT_FOUND  # no audit trail at all: a read answers as if the event did not exist


def audit_search(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    if c.role not in ("admin", "patient"):
        return FORBIDDEN
    patient = w.patients[t.side].fhir_user
    own = c.role == "admin" or c.fhir_user == patient

    def check(r):
        events = [e["resource"] for e in rl.entries(r.json())]
        problems = [f"UNAUTHORIZED RESULT AuditEvent/{e['id']} not about {c.fhir_user}" for e in events
                    if c.role == "patient" and c.fhir_user not in aud.patients(e)]  # fmt: skip
        if own and t.res.id not in {e["id"] for e in events}:
            problems.append(f"missing AuditEvent/{t.res.id}")
        if not own and events:
            problems.append(f"UNAUTHORIZED RESULTS {[e['id'] for e in events]}")
        return problems

    return allow(check=check)


def audit_search_targets(w) -> list[Target]:
    return [Target(f"AuditEvent?entity {s}", s, query={"entity": f"DiagnosticReport/{w.res['final'][s].id}", "subtype": "create"},
                   res=w.res["AuditEvent"][s]) for s in "AB"]  # fmt: skip


def audit_rules() -> dict:
    R: dict[tuple[str, str, str], Rule] = {}
    R["GET", "/fhir/metadata"] = Rule(one(), public)
    R["GET", "/fhir/AuditEvent"] = Rule(audit_search_targets, audit_search)

    R["POST", "/fhir/AuditEvent/_search"] = Rule(audit_search_targets, audit_search, post_search("audit"))
    R["GET", "/fhir/AuditEvent/{id}"] = Rule(side_targets("AuditEvent"), audit_read)

    def post_events(w, c, t, path):
        event = {
            "resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "action": "E", "recorded": rl.now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z"), "outcome": "0",
            "agent": [{"who": {"display": "e2e access matrix"}, "requestor": True}],
            "source": {"site": "e2e", "observer": {"display": "e2e access matrix"}},
        }  # fmt: skip
        return request(w, c, "POST", "audit", path, body={"events": [{"idempotencyKey": f"e2e-matrix-{uuid.uuid4()}", "event": event}]})

    R["POST", "/events"] = Rule(one(), by_role({"service": allow()}), post_events, phase=1)
    R["GET", "/chain/verify"] = Rule(lambda w: [Target("first event", query={"from": 1, "to": 1})], by_role({"admin": allow()}))
    return R


# --------------------------------------------------------------------------- identity rules


def user_target(w) -> list[Target]:
    return [Target(f"account {k}", k if k != "staff" else "-", {"id": v}, res=k) for k, v in w.accounts.items()]


def manages(c, target_kind: str) -> Expect:
    """Admins manage staff, receptionists patients; others may not manage accounts (403)."""
    if c.role == "admin":
        return allow() if target_kind == "staff" else NOT_FOUND
    if c.role == "receptionist":
        return allow() if target_kind != "staff" else NOT_FOUND
    return FORBIDDEN


def user_account(w, c, t) -> Expect:
    return UNAUTHENTICATED if c.role == "anonymous" else manages(c, t.res)


def any_user(w, c, t) -> Expect:
    if c.role == "anonymous":
        return UNAUTHENTICATED
    return FORBIDDEN if c.role in ("system", "service") else allow()


def password_of(w, c) -> str:
    return w.admin.password if c.role == "admin" else c.account.password


def identity_rules() -> dict:
    R: dict[tuple[str, str, str], Rule] = {}

    def login(w, c, t, path):
        a = w.patients["B"].account
        return request(w, c, "POST", "identity", path, body={"username": a.username, "password": a.password})

    def token(w, c, t, path):
        form = urlencode({"grant_type": "client_credentials", "client_id": w.stack["SERVICE_CLIENT_ID"],
                          "client_secret": w.stack["SERVICE_CLIENT_SECRET"]})  # fmt: skip
        h = {"Content-Type": idl.FORM}
        return http().post(url(w, "identity", path), data=form, headers=h, timeout=60)

    R["POST", "/auth/login"] = Rule(one(), public, login)
    R["POST", "/auth/token"] = Rule(one(), public, token)

    def logout(w, c, t, path):
        """A session of its own (users) or a fresh token (clients), so the caller's stays."""
        if c.role in ("anonymous",):
            return request(w, c, "POST", "identity", path)
        if c.role in ("system", "service"):
            fresh = service_token(w.stack, fresh=True) if c.role == "service" else c.token
        else:
            username = w.admin.username if c.role == "admin" else c.account.username
            fresh = w.identity.login_tokens(username, password_of(w, c)).access_token
        return http().post(url(w, "identity", path), headers={"Authorization": f"Bearer {fresh}"}, timeout=60)

    R["POST", "/auth/logout"] = Rule(one(), lambda w, c, t: UNAUTHENTICATED if c.role == "anonymous" else allow(204), logout, phase=1)
    R["GET", "/users/me"] = Rule(one(), any_user)

    def password(w, c, t, path):
        # The right current password and a too weak new one: authorised callers reach the policy.
        body = {"currentPassword": password_of(w, c), "newPassword": "weak"} if c.role not in ("anonymous", "system", "service") else {
            "currentPassword": "x", "newPassword": "weak"}  # fmt: skip
        return request(w, c, "POST", "identity", path, body=body)

    R["POST", "/users/me/password"] = Rule(one(), lambda w, c, t: (e if not (e := any_user(w, c, t)).allowed else allow(400, 422)), password)

    def list_users(w, c, t) -> Expect:
        if c.role == "anonymous":
            return UNAUTHENTICATED
        roles = {"admin": {"admin", "doctor", "receptionist", "technologist"}, "receptionist": {"patient"}}.get(c.role)
        if roles is None:
            return FORBIDDEN
        return allow(check=lambda r: [f"UNAUTHORIZED RESULT a {u['role']} account" for u in r.json()["users"] if u["role"] not in roles][:3])

    R["GET", "/users"] = Rule(one(), list_users)

    def create_user(w, c, t, path):
        role = "technologist" if t.label == "staff" else "patient"
        body = {"username": idl.unique_username("matrix"), "password": idl.remember_password(idl.strong_password()), "role": role,
                "name": "E2E Matrix", "fhirUser": f"{'Patient' if role == 'patient' else 'Practitioner'}/{idl.fhir_id()}"}  # fmt: skip
        return request(w, c, "POST", "identity", path, body=body)

    def create_expect(w, c, t) -> Expect:
        e = user_account(w, c, t)
        return refuse(403) if e == NOT_FOUND else allow(201) if e.allowed else e

    R["POST", "/users"] = Rule(lambda w: [Target("staff", res="staff"), Target("patient", res="patient")], create_expect, create_user, phase=1)
    R["GET", "/users/{id}"] = Rule(user_target, user_account)
    R["PATCH", "/users/{id}"] = Rule(user_target, user_account,
                                     lambda w, c, t, path: request(w, c, "PATCH", "identity", path, body={"name": "E2E Matrix Renamed"}),
                                     phase=1)  # fmt: skip
    admins = by_role({"admin": allow()})
    spare = lambda w: [Target("spare client", "-", {"id": w.spare_client})]  # noqa: E731
    R["GET", "/clients"] = Rule(one(), admins)

    def new_client(w, c, t, path):
        return request(w, c, "POST", "identity", path, body={"name": "E2E matrix client", "role": "system", "scopes": ["system/Patient.r"],
                                                             "organization": f"Organization/{idl.fhir_id('org')}", "trusted": False})  # fmt: skip

    R["POST", "/clients"] = Rule(one(), by_role({"admin": allow(201)}), new_client, phase=1)
    R["GET", "/clients/{id}"] = Rule(spare, admins)
    R["PATCH", "/clients/{id}"] = Rule(spare, admins, lambda w, c, t, path: request(w, c, "PATCH", "identity", path, body={"name": "E2E renamed"}),
                                       phase=1)  # fmt: skip
    R["POST", "/clients/{id}/secret"] = Rule(spare, admins, phase=1)
    anyone = lambda w, c, t: UNAUTHENTICATED if c.role == "anonymous" else allow()  # noqa: E731
    R["GET", "/organizations"] = Rule(one(), anyone)
    R["GET", "/organizations/{id}"] = Rule(lambda w: [Target("an EHR's organization", "-", {"id": w.org})], anyone)
    for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/smart-configuration"):
        R["GET", path] = Rule(one(), public)
    return R


# --------------------------------------------------------------------------- ledger rules


def ledger_rules() -> dict:
    R: dict[tuple[str, str, str], Rule] = {}

    def entries(w, c, t, path):
        item = {"idempotencyKey": f"e2e-matrix-{uuid.uuid4()}", "entry": {"kind": "e2e-matrix", "id": str(uuid.uuid4())}}
        return request(w, c, "POST", "ledger", path, body={"entries": [item]})

    R["POST", "/entries"] = Rule(one(), by_role({"service": allow()}), entries, phase=1)
    R["POST", "/check"] = Rule(one(), by_role({"service": allow(), "admin": allow()}), phase=1)
    pub = lambda w: [Target("-", "-", {"index": 0, "level": 0, "width": 1})]  # noqa: E731
    R["GET", "/checkpoint"] = Rule(one(), public)
    R["GET", "/proofs/inclusion"] = Rule(lambda w: [Target("-", query={"index": 0, "size": w.ledger_size})], public)
    R["GET", "/proofs/consistency"] = Rule(lambda w: [Target("-", query={"from": 1, "to": w.ledger_size})], public)
    R["GET", "/entries/{index}"] = Rule(pub, public)
    R["GET", "/entries/{index}/tlog-proof"] = Rule(pub, public)
    # Whether a tile exists depends on the tree's size: either answer, never a refusal.
    tile = lambda w: [Target("-", "-", {"index": "000", "level": 0, "width": 1})]  # noqa: E731
    for path in ("/tile/{level}/{index}", "/tile/{level}/{index}.p/{width}", "/tile/entries/{index}", "/tile/entries/{index}.p/{width}"):
        R["GET", path] = Rule(tile, lambda w, c, t: allow(200, 404))
    return R


# --------------------------------------------------------------------------- the table


COMMON = {("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics"), ("GET", "/openapi.yaml")}


def rule_table() -> dict[tuple[str, str, str], Rule]:
    table: dict[tuple[str, str, str], Rule] = {}
    for service, rules in (("identity", identity_rules()), ("records", records_rules()), ("consent", consent_rules()),
                           ("audit", audit_rules()), ("ledger", ledger_rules())):  # fmt: skip
        for (method, path), rule in rules.items():
            table[service, method, path] = rule
        for method, path in COMMON:
            table[service, method, path] = Rule(one(), public)
    return table


def fill(path: str, params: dict) -> str:
    for k, v in params.items():
        path = path.replace("{" + k + "}", str(v))
    assert "{" not in path, f"unfilled path parameter in {path}"
    return path


def run_case(w, case: Case) -> tuple[Case, requests.Response | None, list[str]]:
    service, method, template = case.op
    c = w.callers[case.caller]
    t = case.target
    path = fill(template, t.params)
    try:
        if case.rule.send is not None:
            r = case.rule.send(w, c, t, path)
        else:
            r = request(w, c, method, service, path, query=t.query)
    except AssertionError as e:  # fhirkit or a leak check in a response hook
        return case, None, [str(e).splitlines()[0][:400]]
    if service == "identity":
        try:
            idl.check_no_leaks(r)
        except AssertionError as e:
            return case, r, [str(e).splitlines()[0][:400]]
    return case, r, judge(case, r)


def judge(case: Case, r: requests.Response) -> list[str]:
    e = case.expect
    if r.status_code not in e.statuses:
        if not e.allowed and 200 <= r.status_code < 300:
            return [f"UNAUTHORIZED SUCCESS: expected {sorted(e.statuses)}: {rl.describe(r)[:300]}"]
        return [f"expected {sorted(e.statuses)}: {rl.describe(r)[:300]}"]
    if e.allowed:
        return e.check(r) if e.check else []
    return refusal_shape(case, r)


def refusal_shape(case: Case, r: requests.Response) -> list[str]:
    """Refusals as the design guide says: OperationOutcome under /fhir, problem+json elsewhere;
    a 401 says how to authenticate."""
    path = case.op[2]
    out = []
    mt = rl.media_type(r)
    if path.startswith("/fhir"):
        if mt != rl.FHIR_JSON or r.json().get("resourceType") != "OperationOutcome":
            out.append(f"a refusal under /fhir that is no OperationOutcome: {rl.describe(r)[:200]}")
    elif mt != "application/problem+json" or r.json().get("status") != r.status_code:
        out.append(f"a refusal that is no problem+json: {rl.describe(r)[:200]}")
    if r.status_code == 401 and not r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"):
        out.append(f"401 without WWW-Authenticate: Bearer: {r.headers.get('WWW-Authenticate')!r}")
    return out


def build_cases(w) -> list[Case]:
    table = rule_table()
    ops = operations()
    missing = [op for op in ops if op not in table]
    assert not missing, "operations without a rule in the access matrix (decide who may call them):\n" + "\n".join(map(str, missing))
    stale = [op for op in table if op not in ops]
    assert not stale, f"rules for operations no OpenAPI document has: {stale}"
    cases = []
    for op in ops:
        rule = table[op]
        for target in rule.targets(w):
            for name in CALLERS:
                cases.append(Case(op, name, target, rule.expect(w, w.callers[name], target), rule))
    return cases


def test_access_matrix(world):
    w = world
    started = time.monotonic()
    cases = build_cases(w)
    results = []
    with ThreadPoolExecutor(WORKERS) as pool:
        results += pool.map(lambda case: run_case(w, case), [c for c in cases if c.rule.phase == 0])
    for phase in (1, 2):
        results += [run_case(w, c) for c in cases if c.rule.phase == phase]
    took = time.monotonic() - started

    failures = [(case, p) for case, _, problems in results for p in problems]
    unauthorized = [(case, p) for case, p in failures if "UNAUTHORIZED" in p]
    outcomes = Counter("allowed" if case.expect.allowed else "refused" for case in cases)
    print(f"\naccess matrix: {len(cases)} cases ({outcomes['allowed']} allowed, {outcomes['refused']} refused) over "
          f"{len({c.op for c in cases})} operations and {len(CALLERS)} callers in {took:.1f} s; "
          f"{len(unauthorized)} unauthorized successes, {len(failures)} failures")  # fmt: skip
    lines = [f"{c.op[0]} {c.op[1]} {c.op[2]} [{c.target.label}] as {c.caller}: {p}" for c, p in failures]
    if os.environ.get("MATRIX_REPORT"):
        Path(os.environ["MATRIX_REPORT"]).write_text("\n".join(lines) + "\n")
    report = "\n".join(lines[:80])
    assert not unauthorized, f"{len(unauthorized)} UNAUTHORIZED answers (of {len(failures)} failures):\n{report}"
    assert not failures, f"{len(failures)} wrong answers:\n{report}"
    assert len(cases) >= MIN_CASES, f"the matrix shrank: {len(cases)} cases < {MIN_CASES}"
