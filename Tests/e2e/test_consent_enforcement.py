"""Consent as records enforces it (issue 6): patients' grants, revocation within the cache bound,
expiry, category and single-report grants, break-glass, EHR systems as Organizations, and fail
closed while consent is down. Black box: the running identity, records, consent and ledger.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import anchorlib as al
import consentlib as cl
import outboxlib as ol
import pytest
import recordslib as rl
from e2e_support import assert_problem, service_token

LAB = ("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")
RAD = ("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD")


@pytest.fixture(scope="module")
def consent(stack, identity) -> cl.Consent:
    client = cl.Consent(stack)
    r = client.http.get(client.public + "/health/ready", timeout=10)
    assert r.status_code == 200, f"consent is not ready: {r.status_code} {r.text[:200]}"
    return client


@pytest.fixture
def care(actors, records):
    """A patient with an assigned doctor, a second doctor with no basis yet, and reports by
    the assigned doctor: final LAB, final RAD (with a PDF), and a preliminary LAB."""
    gp = actors.doctor()
    other = actors.doctor()
    patient = actors.patient(gp=gp)
    subject = patient.fhir_user
    pdf = rl.binary_json(subject, b"%PDF-1.4 consent e2e " + uuid.uuid4().bytes)
    binary = records.must_create("Binary", pdf, gp.token, "the assigned doctor uploading a PDF")
    lab = records.must_create("DiagnosticReport", rl.report_body(subject, status="final", category=LAB), gp.token)
    rad = records.must_create(
        "DiagnosticReport",
        rl.report_body(subject, status="final", category=RAD, presented=[{"contentType": "application/pdf", "url": f"Binary/{binary['id']}"}]),
        gp.token,
    )
    draft = records.must_create("DiagnosticReport", rl.report_body(subject, status="preliminary", category=LAB), gp.token)
    return {"gp": gp, "other": other, "patient": patient, "lab": lab, "rad": rad, "draft": draft, "binary": binary}


def sees(records, who, care) -> set[str]:
    total, found = cl.visible_reports(records, care["patient"].fhir_user, who.token)
    assert total == len(found), f"total {total} disagrees with the {len(found)} entries"
    return found


def test_grant_opens_released_reports_and_revocation_closes_them_within_the_bound(records, consent, care, stack):
    other, patient = care["other"], care["patient"]
    released = {care["lab"]["id"], care["rad"]["id"]}
    assert sees(records, other, care) == set(), "a doctor with no basis sees the patient's reports"
    assert rl.assert_bundle(records.search("Patient", {"_id": patient.id, "_total": "accurate"}, other.token))["total"] == 0
    assert sees(records, care["gp"], care) == released | {care["draft"]["id"]}, "the assigned doctor keeps treatment access"

    grant = consent.create(cl.consent_body(patient.fhir_user, other.fhir_user), patient.token)
    token = service_token(stack)
    decision = consent.decide(token, other.fhir_user, patient.fhir_user, resource=f"DiagnosticReport/{care['lab']['id']}", category=["LAB"])
    assert decision.status_code == 200, rl.describe(decision)
    assert decision.json() == {"decision": "permit", "basis": f"Consent/{grant['id']}", "maxAge": 5}

    took = cl.wait_until(lambda: sees(records, other, care) == released, cl.REVOCATION_BOUND + cl.POLL_SLACK, "the grant reaching records")
    assert took <= cl.REVOCATION_BOUND + cl.POLL_SLACK
    assert cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token)
    assert not cl.readable(records, "DiagnosticReport", care["draft"]["id"], other.token), "a consent opened an unreleased report"
    assert cl.readable(records, "Patient", patient.id, other.token), "the granted doctor cannot read the patient"
    assert records.vread("DiagnosticReport", care["lab"]["id"], 1, other.token).status_code == 200
    assert records.history("DiagnosticReport", care["rad"]["id"], other.token).status_code == 200
    binary = records.request("GET", f"/Binary/{care['binary']['id']}", other.token, accept="application/pdf")
    assert binary.status_code == 200, "the PDF the granted report presents: " + rl.describe(binary)
    verify = al.verify(records, other.token, "DiagnosticReport", care["rad"]["id"])
    assert verify.status_code == 200, rl.describe(verify)
    included = records.must_search("DiagnosticReport", {"patient": patient.fhir_user, "_include": "DiagnosticReport:patient"}, other.token)
    assert rl.ids(included, "include") == [patient.id]
    provenance = records.must_search("Provenance", {"target": f"DiagnosticReport/{care['lab']['id']}"}, other.token)
    assert len(rl.ids(provenance)) == 1
    # Consent grants reading, never writing.
    amended = {**rl.without_meta(care["lab"]), "id": care["lab"]["id"], "status": "amended"}
    assert records.update("DiagnosticReport", care["lab"]["id"], amended, other.token).status_code in (403, 404)

    consent.revoke(grant, patient.token)
    # At the consent service at once; at records within the cache bound.
    decision = consent.decide(token, other.fhir_user, patient.fhir_user, resource=f"DiagnosticReport/{care['lab']['id']}")
    assert decision.json()["decision"] == "deny"
    started = time.monotonic()
    cl.wait_until(lambda: sees(records, other, care) == set(), cl.REVOCATION_BOUND + cl.POLL_SLACK, "the revocation reaching records")
    assert time.monotonic() - started <= cl.REVOCATION_BOUND + cl.POLL_SLACK
    assert not cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token)
    assert not cl.readable(records, "Patient", patient.id, other.token)


def test_delete_revokes_and_keeps_history(records, consent, care):
    other, patient = care["other"], care["patient"]
    grant = consent.create(cl.consent_body(patient.fhir_user, other.fhir_user), patient.token)
    cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "grant")
    r = consent.fhir("DELETE", f"/Consent/{grant['id']}", patient.token)
    assert r.status_code == 204, rl.describe(r)
    assert consent.fhir("GET", f"/Consent/{grant['id']}", patient.token).status_code == 410
    history = rl.assert_bundle(consent.fhir("GET", f"/Consent/{grant['id']}/_history", patient.token), "history")
    assert len(history["entry"]) == 2
    cl.wait_until(lambda: not cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "revoked")


def test_category_and_single_report_grants(records, consent, care, actors):
    other, patient = care["other"], care["patient"]
    consent.create(cl.consent_body(patient.fhir_user, other.fhir_user, category="LAB"), patient.token)
    cl.wait_until(lambda: sees(records, other, care) == {care["lab"]["id"]}, cl.REVOCATION_BOUND + cl.POLL_SLACK, "the LAB grant")
    assert not cl.readable(records, "DiagnosticReport", care["rad"]["id"], other.token)
    binary = records.request("GET", f"/Binary/{care['binary']['id']}", other.token, accept="application/pdf")
    assert binary.status_code == 404, "a LAB grant opened the RAD report's PDF: " + rl.describe(binary)

    third = actors.doctor()
    consent.create(cl.consent_body(patient.fhir_user, third.fhir_user, report=f"DiagnosticReport/{care['rad']['id']}"), patient.token)
    cl.wait_until(lambda: sees(records, third, care) == {care["rad"]["id"]}, cl.REVOCATION_BOUND + cl.POLL_SLACK, "the single-report grant")
    binary = records.request("GET", f"/Binary/{care['binary']['id']}", third.token, accept="application/pdf")
    assert binary.status_code == 200, "the granted report's PDF: " + rl.describe(binary)
    # A grant naming another patient's report opens nothing: the report must be the granting patient's.
    stranger = actors.patient(gp=care["gp"])
    foreign = records.must_create("DiagnosticReport", rl.report_body(stranger.fhir_user, status="final"), care["gp"].token)
    fourth = actors.doctor()
    consent.create(cl.consent_body(patient.fhir_user, fourth.fhir_user, report=f"DiagnosticReport/{foreign['id']}"), patient.token)
    time.sleep(0.5)
    assert not cl.readable(records, "DiagnosticReport", foreign["id"], fourth.token)


def test_grants_expire_at_their_end(records, consent, care, stack):
    other, patient = care["other"], care["patient"]
    end = cl.later(4)
    consent.create(cl.consent_body(patient.fhir_user, other.fhir_user, end=end), patient.token)
    cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), 3.5, "the short grant")
    grants = consent.grants(service_token(stack), other.fhir_user).json()["grants"]
    assert len(grants) == 1 and abs(rl.instant(grants[0]["until"]) - end) <= timedelta(milliseconds=1), grants
    cl.wait_until(lambda: not cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), 6, "the grant's end")
    assert rl.now_utc() >= end - timedelta(milliseconds=50), "access ended before the grant's end"
    assert consent.grants(service_token(stack), other.fhir_user).json()["grants"] == []
    # A grant that starts in the future opens nothing yet.
    consent.create(cl.consent_body(patient.fhir_user, other.fhir_user, start=cl.later(3600)), patient.token)
    time.sleep(0.3)
    assert consent.grants(service_token(stack), other.fhir_user).json()["grants"] == []


def test_break_glass_lifecycle(records, consent, care, actors, rec_technologist, stack):
    other, patient = care["other"], care["patient"]
    reason = "unconscious patient in the emergency room, allergy history needed"
    r = consent.break_glass(other.token, patient.fhir_user, reason)
    assert r.status_code == 201, rl.describe(r)
    session = r.json()
    assert r.headers["Location"] == f"/break-glass/{session['id']}"
    assert session["actor"] == other.fhir_user and session["patient"] == patient.fhir_user and session["status"] == "active"
    started, expires = rl.instant(session["started"]), rl.instant(session["expires"])
    assert abs((expires - started).total_seconds() - 3600) < 1, session
    # Break-glass opens every report of the patient, preliminary ones included.
    everything = {care["lab"]["id"], care["rad"]["id"], care["draft"]["id"]}
    cl.wait_until(lambda: sees(records, other, care) == everything, cl.REVOCATION_BOUND + cl.POLL_SLACK, "break-glass access")
    grants = consent.grants(service_token(stack), other.fhir_user).json()["grants"]
    assert {"patient": patient.fhir_user, "scope": "all", "basis": f"break-glass/{session['id']}"}.items() <= grants[0].items()
    assert cl.readable(records, "DiagnosticReport", care["draft"]["id"], other.token)
    flagged = ol.audited(stack, "records", f"event LIKE '%\"BTG\"%' AND event LIKE '%break-glass/{session['id']}%' "
                                           f"AND event LIKE '%DiagnosticReport/{care['draft']['id']}/_history/1%'")  # fmt: skip
    assert flagged, "a read under break-glass is not flagged in records' audit trail"

    # Shown to the patient.
    mine = consent.json("GET", "/break-glass", patient.token, params={"patient": patient.fhir_user})
    assert mine.status_code == 200, rl.describe(mine)
    assert session["id"] in [s["id"] for s in mine.json()["sessions"]]
    # Only its doctor ends it; others cannot even see it.
    assert_problem(consent.json("DELETE", f"/break-glass/{session['id']}", actors.doctor().token), 404)
    ended = consent.json("DELETE", f"/break-glass/{session['id']}", other.token)
    assert ended.status_code == 200 and ended.json()["status"] == "ended", rl.describe(ended)
    cl.wait_until(lambda: sees(records, other, care) == set(), cl.REVOCATION_BOUND + cl.POLL_SLACK, "the end of break-glass")

    assert_problem(consent.break_glass(rec_technologist.token, patient.fhir_user, reason), 403, "technologist")
    assert_problem(consent.break_glass(patient.token, patient.fhir_user, reason), 403, "patient")
    assert_problem(consent.break_glass(other.token, patient.fhir_user, "because"), 422, "a reason too short to mean anything")
    assert_problem(consent.break_glass(other.token, "Patient/no-such-patient", reason), 422, "unknown patient")

    events = ol.audited(stack, "consent", f"event LIKE '%{session['id']}%'")
    assert len(events) == 2, "break-glass start and end each leave one audit event"


def test_untrusted_ehr_reads_only_what_patients_granted_its_organization(records, consent, care, actors):
    patient = care["patient"]
    ehr = actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False)
    assert sees(records, ehr, care) == set()
    consent.create(cl.consent_body(patient.fhir_user, ehr.fhir_user, category="RAD"), patient.token)
    cl.wait_until(lambda: sees(records, ehr, care) == {care["rad"]["id"]}, cl.REVOCATION_BOUND + cl.POLL_SLACK, "the EHR's grant")
    # Its scopes still bound it: without DiagnosticReport scopes a grant opens no report.
    narrow = actors.ehr(["system/Patient.rs"], trusted=False)
    consent.create(cl.consent_body(patient.fhir_user, narrow.fhir_user), patient.token)
    cl.wait_until(lambda: cl.readable(records, "Patient", patient.id, narrow.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "narrow EHR")
    assert records.read("DiagnosticReport", care["rad"]["id"], narrow.token).status_code == 403


def test_receptionist_records_a_consent_on_the_patients_behalf(records, consent, care, actors, stack):
    desk = actors.receptionist()
    other, patient = care["other"], care["patient"]
    stored = consent.create(cl.consent_body(patient.fhir_user, other.fhir_user), desk.token, "a receptionist recording a consent")
    recorded = [e for e in stored.get("extension", []) if e["url"] == "https://medledger.dev/fhir/StructureDefinition/recorded-by"]
    assert len(recorded) == 1, stored
    cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "grant")
    # The patient sees it, and revokes it themselves.
    found = rl.assert_bundle(consent.search({"patient": patient.fhir_user}, patient.token))
    assert stored["id"] in rl.ids(found)
    consent.revoke({**stored}, patient.token)
    events = ol.audited(stack, "consent", f"event LIKE '%Consent/{stored['id']}%'")
    assert len(events) == 2, "the consent's creation and revocation each leave one audit event"


def test_bad_consents_are_refused_with_an_outcome(consent, care, actors):
    patient, other = care["patient"], care["other"]
    stranger = actors.patient()
    cases = [
        (cl.consent_body(stranger.fhir_user, other.fhir_user), 403, "another patient's consent"),
        (cl.consent_body(patient.fhir_user, "Practitioner/does-not-exist"), 422, "an actor that does not exist"),
        (cl.consent_body(patient.fhir_user, "Organization/does-not-exist"), 422, "an organization that does not exist"),
        (cl.consent_body(patient.fhir_user, other.fhir_user, start="2026-05-01", end="2026-04-01"), 422, "ends before it starts"),
        (cl.consent_body(patient.fhir_user, other.fhir_user, category="NOPE"), 422, "an unknown category"),
    ]
    for body, status, what in cases:
        r = consent.fhir("POST", "/Consent", patient.token, resource=body)
        rl.assert_outcome(r, status, what=what)
    r = consent.fhir("POST", "/Consent", patient.token, headers={"Content-Type": rl.FHIR_JSON}, resource=None)
    assert r.status_code < 500


def test_consent_down_fails_closed_except_fresh_cached_permits(records, consent, care, stack):
    other, gp, patient = care["other"], care["gp"], care["patient"]
    consent.create(cl.consent_body(patient.fhir_user, other.fhir_user), patient.token)
    cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "grant")
    # Let the cached answer expire, then read once: records asks consent afresh.
    time.sleep(cl.REVOCATION_BOUND + 0.5)
    assert cl.readable(records, "DiagnosticReport", care["lab"]["id"], other.token)
    fetched = time.monotonic()
    al.stack_service(stack, "stop", "consent")
    try:
        if time.monotonic() - fetched < cl.REVOCATION_BOUND - 1:
            r = records.read("DiagnosticReport", care["lab"]["id"], other.token)
            assert r.status_code == 200, "a permit cached moments ago stopped working: " + rl.describe(r)
        time.sleep(max(0.0, cl.REVOCATION_BOUND + 0.5 - (time.monotonic() - fetched)))
        r = records.read("DiagnosticReport", care["lab"]["id"], other.token)
        assert r.status_code == 503, "consent down: access by consent must be refused: " + rl.describe(r)
        assert r.json()["resourceType"] == "OperationOutcome" and "consent" in r.json()["issue"][0]["diagnostics"]
        assert r.headers.get("Retry-After") == "5"
        # The same answer for a resource that does not exist: nothing leaks.
        assert records.read("DiagnosticReport", str(uuid.uuid4()), other.token).status_code == 503
        # A search answers what needs no consent, and says what it left out.
        bundle = rl.assert_bundle(records.search("DiagnosticReport", {"patient": patient.fhir_user, "_total": "accurate"}, other.token))
        assert bundle["total"] == 0 and rl.ids(bundle) == []
        warnings = rl.entries(bundle, "outcome")
        assert len(warnings) == 1 and warnings[0]["resource"]["issue"][0]["severity"] == "warning", bundle
        # Treatment access does not depend on consent.
        assert cl.readable(records, "DiagnosticReport", care["draft"]["id"], gp.token)
    finally:
        al.stack_service(stack, "start", "consent")
    # Until records asks again (at most a second after a failed call), the answer stays 503.
    cl.wait_until(lambda: records.read("DiagnosticReport", care["lab"]["id"], other.token).status_code == 200, 10, "access once consent is back")
