"""Client helpers for the consent service's black-box tests.

Consent answers FHIR at CONSENT_URL/fhir (every JSON answer checked by the same fhirkit
validator as records'), and plain JSON (problem+json errors) at /decisions, /grants and
/break-glass. Nothing here is shared with the Swift service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import recordslib as rl
import requests

CONSENT_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
CONSENT_ACTION = ("http://terminology.hl7.org/CodeSystem/consentaction", "access")
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0074"
LOINC_CONSENT = ("http://loinc.org", "59284-0")
OPT_IN = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN")
RECIPIENT = ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")

# How late a revocation may reach records (CONSENT_CACHE_SECONDS, default 5), plus request slack.
REVOCATION_BOUND = 5.0
POLL_SLACK = 3.0


def coding(pair: tuple[str, str]) -> dict:
    return {"system": pair[0], "code": pair[1]}


def instant(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def consent_body(patient: str, actor: str, *, status: str = "active", category: str | None = None,
                 report: str | None = None, start: datetime | str | None = None, end: datetime | str | None = None,
                 **extra) -> dict:  # fmt: skip
    """An R4 privacy Consent: `patient` grants `actor` (Practitioner/… or Organization/…) access
    to all reports, one category (v2-0074 code) or one report (DiagnosticReport/…)."""
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{"role": {"coding": [coding(RECIPIENT)]}, "reference": {"reference": actor}}],
        "action": [{"coding": [coding(CONSENT_ACTION)]}],
    }
    if start is not None or end is not None:
        period = {}
        if start is not None:
            period["start"] = start if isinstance(start, str) else instant(start)
        if end is not None:
            period["end"] = end if isinstance(end, str) else instant(end)
        provision["period"] = period
    if category is not None:
        provision["code"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}]
    if report is not None:
        provision["data"] = [{"meaning": "instance", "reference": {"reference": report}}]
    body = {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [coding(CONSENT_SCOPE)]},
        "category": [{"coding": [coding(LOINC_CONSENT)]}],
        "patient": {"reference": patient},
        "dateTime": instant(datetime.now(timezone.utc)),
        "policyRule": {"coding": [coding(OPT_IN)]},
        "provision": provision,
    }
    body.update(extra)
    return body


class Consent:
    """HTTP client for the consent service: FHIR Consent at /fhir, JSON elsewhere."""

    def __init__(self, stack: dict[str, str]):
        self.public = stack["CONSENT_URL"].rstrip("/")
        self.base = self.public + "/fhir"
        self.http = requests.Session()
        self.http.hooks["response"].append(rl.check_fhir_response)

    def fhir(self, method: str, path: str, token: str | None, *, resource: Any = None, params: Any = None,
             headers: dict | None = None) -> requests.Response:  # fmt: skip
        h = {"Accept": rl.FHIR_JSON}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if resource is not None:
            h["Content-Type"] = rl.FHIR_JSON
        h.update(headers or {})
        return self.http.request(method, self.base + path, json=resource, params=params, headers=h, timeout=rl.HTTP_TIMEOUT)

    def json(self, method: str, path: str, token: str | None, body: Any = None, params: Any = None) -> requests.Response:
        h = {"Accept": "application/json"}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.public + path, json=body, params=params, headers=h, timeout=rl.HTTP_TIMEOUT)

    # -- FHIR

    def create(self, body: dict, token: str, what: str = "creating a Consent") -> dict:
        r = self.fhir("POST", "/Consent", token, resource=body)
        return rl.assert_resource(r, 201, "Consent", version=1, what=what)

    def update(self, body: dict, token: str, what: str = "updating a Consent") -> dict:
        r = self.fhir("PUT", f"/Consent/{body['id']}", token, resource=body)
        return rl.assert_resource(r, 200, "Consent", what=what)

    def revoke(self, consent: dict, token: str) -> dict:
        """Revocation as R4 has it: the same Consent, status inactive."""
        return self.update({**rl.without_meta(consent), "id": consent["id"], "status": "inactive"}, token, "revoking a Consent")

    def search(self, params: Any, token: str) -> requests.Response:
        return self.fhir("GET", "/Consent", token, params=params)

    # -- decisions, grants, break-glass

    def decide(self, token: str, actor: str, patient: str, resource: str | None = None,
               category: list[str] | None = None) -> requests.Response:  # fmt: skip
        body: dict[str, Any] = {"actor": actor, "patient": patient, "action": "read"}
        if resource is not None:
            body["resource"] = resource
        if category is not None:
            body["category"] = category
        return self.json("POST", "/decisions", token, body)

    def grants(self, token: str, actor: str) -> requests.Response:
        return self.json("GET", "/grants", token, params={"actor": actor})

    def break_glass(self, token: str, patient: str, reason: str) -> requests.Response:
        return self.json("POST", "/break-glass", token, {"patient": patient, "reason": reason})


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls `check` every 0.2 s; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not so after {timeout:.1f} s")
        time.sleep(0.2)


def readable(records: rl.Records, rtype: str, rid: str, token: str) -> bool:
    r = records.read(rtype, rid, token)
    assert r.status_code in (200, 404), f"reading {rtype}/{rid}: " + rl.describe(r)
    return r.status_code == 200


def visible_reports(records: rl.Records, patient: str, token: str) -> tuple[int, set[str]]:
    """(total, ids) of a patient's DiagnosticReports as `token` sees them."""
    bundle = records.must_search("DiagnosticReport", {"patient": patient, "_total": "accurate", "_count": "100"}, token)
    return bundle.get("total", -1), set(rl.ids(bundle))


def later(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)
