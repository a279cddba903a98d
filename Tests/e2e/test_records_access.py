"""Records' access rules, black-box: the role matrix on every interaction (create, read,
search, update, delete for Patient, Practitioner, DiagnosticReport and Binary) for the admin,
a receptionist, technologists, doctors (assigned patient or not), patients (own or other,
preliminary or final report) and EHR clients (trusted or not); a missing scope is 403, a
resource outside the caller's compartment is 404 (like an unknown id), and search totals,
_include, vread and history only ever show what the caller may see. No token: 401.

The accounts are made the way the design guide links them: the Practitioner/Patient in
records first, then the account in identity with fhirUser (recordslib.Actors).
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import recordslib as rl
from recordslib import assert_outcome, describe


@pytest.fixture(scope="module")
def world(records, actors, rec_admin, rec_receptionist, ehr_trusted, ehr_untrusted, ehr_writer):
    """Two doctors with one patient each, two technologists, and reports/Binaries in every
    state that matters; every resource carries this module's identifier systems."""
    w = SimpleNamespace(admin=rec_admin, desk=rec_receptionist, trusted=ehr_trusted, untrusted=ehr_untrusted,
                        writer=ehr_writer)  # fmt: skip
    w.start = rl.now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    w.isys, w.rsys, w.psys = rl.new_system("mrn"), rl.new_system("acc"), rl.new_system("npi")
    w.doc1 = actors.doctor(rl.practitioner_body(system=w.psys))
    w.doc2 = actors.doctor(rl.practitioner_body(system=w.psys))
    w.pat1 = actors.patient(gp=w.doc1, body=rl.patient_body(system=w.isys))
    w.pat2 = actors.patient(gp=w.doc2, body=rl.patient_body(system=w.isys))
    w.tech1 = actors.technologist()
    w.tech2 = actors.technologist()

    def binary(who, patient, content: bytes) -> dict:
        return records.must_create("Binary", rl.binary_json(patient.fhir_user, content), who.token, f"{who.name}: Binary")

    def report(who, patient, status, value, presented=None) -> dict:
        body = rl.report_body(patient.fhir_user, status=status, system=w.rsys, value=value,
                              presented=[{"url": f"Binary/{presented['id']}"}] if presented else None)  # fmt: skip
        return records.must_create("DiagnosticReport", body, who.token, f"{who.name}: {status} report")

    # If technologists cannot upload (test_technologist reports that), the doctor's file stands in
    # so that the rest of the matrix still runs.
    r = records.create("Binary", rl.binary_json(w.pat1.fhir_user, b"%PDF-1.4 preliminary scan of patient 1"), w.tech1.token)
    w.tech_upload_error = None if r.status_code == 201 else describe(r)
    w.bin_prelim1 = r.json() if r.status_code == 201 else binary(w.doc1, w.pat1, b"%PDF-1.4 preliminary scan of patient 1")
    w.dr_prelim1 = report(w.tech1, w.pat1, "preliminary", "prelim1", w.bin_prelim1)
    w.bin_final1 = binary(w.doc1, w.pat1, b"%PDF-1.4 final report of patient 1")
    w.dr_final1 = report(w.doc1, w.pat1, "final", "final1", w.bin_final1)
    w.dr_final2 = report(w.doc2, w.pat2, "final", "final2")
    w.dr_prelim2 = report(w.tech1, w.pat2, "preliminary", "prelim2")
    w.bin_other2 = binary(w.doc2, w.pat2, b"%PDF-1.4 another patient's file")
    w.prac = records.must_create("Practitioner", rl.practitioner_body(system=w.psys), rec_admin.token)
    return w


class Matrix:
    """Collects every expectation that fails, so one run shows the whole matrix."""

    def __init__(self, who: str):
        self.who = who
        self.failures: list[str] = []

    def check(self, what: str, r, want: int | set[int]) -> None:
        wants = {want} if isinstance(want, int) else set(want)
        try:
            if wants & {200, 201, 204}:
                assert r.status_code in wants, f"expected {sorted(wants)}: " + describe(r)
            else:
                body = assert_outcome(r, wants)
                if r.status_code == 404:
                    codes = {i.get("code") for i in body["issue"]}
                    assert codes & {"not-found", "deleted"}, f"404 without a not-found issue: {body}"
        except AssertionError as e:
            self.failures.append(f"{what}: {str(e).splitlines()[0]}")

    def search(self, what: str, r, want_ids: set[str] | int) -> None:
        """A search answer: a set of ids that must be exactly the matches (and the total), or
        an error status."""
        if isinstance(want_ids, int):
            self.check(what, r, want_ids)
            return
        try:
            bundle = rl.assert_bundle(r, what=what)
            got = set(rl.ids(bundle))
            assert got == want_ids, f"matches {sorted(got)} != {sorted(want_ids)}"
            assert bundle.get("total") == len(want_ids), f"total {bundle.get('total')} != {len(want_ids)}"
        except AssertionError as e:
            self.failures.append(f"{what}: {str(e).splitlines()[0]}")

    def done(self) -> None:
        assert not self.failures, f"{self.who}: {len(self.failures)} wrong answers:\n" + "\n".join(self.failures)


def _current(records, w, rtype: str, rid: str) -> dict:
    return records.must_read(rtype, rid, w.writer.token, "current version (writing EHR)")


def _changed(records, w, rtype: str, rid: str, **changes) -> dict:
    return {**_current(records, w, rtype, rid), **changes}


def _forbidden_everywhere(m: Matrix, records, w, token: str, rtype: str, *, rid: str, body: dict, params: dict) -> None:
    """Every interaction on a type the token has no scope for: 403 (even for an unknown id)."""
    m.check(f"create {rtype}", records.create(rtype, body, token), 403)
    m.check(f"read {rtype}", records.read(rtype, rid, token), 403)
    m.check(f"read unknown {rtype}", records.read(rtype, str(uuid.uuid4()), token), 403)
    m.check(f"vread {rtype}", records.vread(rtype, rid, 1, token), 403)
    m.check(f"history {rtype}", records.history(rtype, rid, token), 403)
    m.check(f"search {rtype}", records.search(rtype, params, token), 403)
    # PUT on Binary is 405 for everyone (content is immutable: a new Binary instead).
    m.check(f"update {rtype}", records.update(rtype, rid, _current(records, w, rtype, rid), token),
            {403, 405} if rtype == "Binary" else 403)  # fmt: skip
    m.check(f"delete {rtype}", records.delete(rtype, rid, token), 403)


def _bodies(w) -> dict:
    return {
        "Patient": rl.patient_body(),
        "Practitioner": rl.practitioner_body(),
        "DiagnosticReport": rl.report_body(w.pat1.fhir_user),
        "Binary": rl.binary_json(w.pat1.fhir_user, b"e2e"),
    }


# --------------------------------------------------------------------------- staff


def test_admin(records, world):
    w, m, tok = world, Matrix("admin"), world.admin.token
    made = records.create("Practitioner", rl.practitioner_body(), tok)
    m.check("create Practitioner", made, 201)
    m.check("read Practitioner", records.read("Practitioner", w.doc1.id, tok), 200)
    m.search("search Practitioner", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok),
             {w.doc1.id, w.doc2.id, w.prac["id"]})  # fmt: skip
    m.check("update Practitioner", records.update("Practitioner", w.prac["id"], _changed(records, w, "Practitioner", w.prac["id"], gender="female"), tok), 200)
    if made.status_code == 201:
        m.check("delete Practitioner", records.delete("Practitioner", made.json()["id"], tok), 204)
    b = _bodies(w)
    _forbidden_everywhere(m, records, w, tok, "Patient", rid=w.pat1.id, body=b["Patient"], params={"identifier": f"{w.isys}|"})
    _forbidden_everywhere(m, records, w, tok, "DiagnosticReport", rid=w.dr_final1["id"], body=b["DiagnosticReport"],
                          params={"identifier": f"{w.rsys}|"})  # fmt: skip
    _forbidden_everywhere(m, records, w, tok, "Binary", rid=w.bin_final1["id"], body=b["Binary"], params={"_id": w.bin_final1["id"]})
    m.done()


def test_receptionist(records, world):
    w, m, tok = world, Matrix("receptionist"), world.desk.token
    made = records.create("Patient", rl.patient_body(gp=w.doc1.fhir_user), tok)
    m.check("create Patient (with a generalPractitioner)", made, 201)
    m.check("read Patient 1", records.read("Patient", w.pat1.id, tok), 200)
    m.check("read Patient 2", records.read("Patient", w.pat2.id, tok), 200)
    m.search("search Patient", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), {w.pat1.id, w.pat2.id})
    m.check("update Patient", records.update("Patient", w.pat2.id, _changed(records, w, "Patient", w.pat2.id, birthDate="1960-01-01"), tok), 200)
    if made.status_code == 201:
        m.check("delete Patient", records.delete("Patient", made.json()["id"], tok), 204)
    m.check("read Practitioner", records.read("Practitioner", w.doc1.id, tok), 200)
    m.search("search Practitioner", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok),
             {w.doc1.id, w.doc2.id, w.prac["id"]})  # fmt: skip
    m.check("create Practitioner", records.create("Practitioner", rl.practitioner_body(), tok), 403)
    m.check("update Practitioner", records.update("Practitioner", w.prac["id"], _current(records, w, "Practitioner", w.prac["id"]), tok), 403)
    m.check("delete Practitioner", records.delete("Practitioner", w.prac["id"], tok), 403)
    b = _bodies(w)
    _forbidden_everywhere(m, records, w, tok, "DiagnosticReport", rid=w.dr_final1["id"], body=b["DiagnosticReport"],
                          params={"identifier": f"{w.rsys}|"})  # fmt: skip
    _forbidden_everywhere(m, records, w, tok, "Binary", rid=w.bin_final1["id"], body=b["Binary"], params={"_id": w.bin_final1["id"]})
    m.done()


def test_technologist(records, world):
    w, m, tok = world, Matrix("technologist"), world.tech1.token
    if w.tech_upload_error:
        m.failures.append("create Binary for a patient (setup): " + w.tech_upload_error)
    m.check("read Patient 1", records.read("Patient", w.pat1.id, tok), 200)
    m.check("read Patient 2", records.read("Patient", w.pat2.id, tok), 200)
    m.search("search Patient", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), {w.pat1.id, w.pat2.id})
    m.check("create Patient", records.create("Patient", rl.patient_body(), tok), 403)
    m.check("update Patient", records.update("Patient", w.pat1.id, _current(records, w, "Patient", w.pat1.id), tok), 403)
    m.check("delete Patient", records.delete("Patient", w.pat1.id, tok), 403)
    m.check("read Practitioner", records.read("Practitioner", w.doc1.id, tok), 200)
    m.check("search Practitioner", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok), 200)
    m.check("create Practitioner", records.create("Practitioner", rl.practitioner_body(), tok), 403)
    m.check("update Practitioner", records.update("Practitioner", w.prac["id"], _current(records, w, "Practitioner", w.prac["id"]), tok), 403)
    m.check("delete Practitioner", records.delete("Practitioner", w.prac["id"], tok), 403)

    # Reports: preliminary ones for any patient; only their own are visible.
    m.check("create preliminary report (any patient)", records.create("DiagnosticReport", rl.report_body(w.pat2.fhir_user), tok), 201)
    m.check("create final report", records.create("DiagnosticReport", rl.report_body(w.pat1.fhir_user, status="final"), tok), 403)
    m.check("create amended report", records.create("DiagnosticReport", rl.report_body(w.pat1.fhir_user, status="amended"), tok), 403)
    m.check("read own report", records.read("DiagnosticReport", w.dr_prelim1["id"], tok), 200)
    m.check("vread own report", records.vread("DiagnosticReport", w.dr_prelim1["id"], 1, tok), 200)
    m.check("read a doctor's report", records.read("DiagnosticReport", w.dr_final1["id"], tok), 404)
    m.check("vread a doctor's report", records.vread("DiagnosticReport", w.dr_final1["id"], 1, tok), 404)
    m.check("history of a doctor's report", records.history("DiagnosticReport", w.dr_final1["id"], tok), 404)
    m.check("search reports (only their own match)", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|"}, tok), 200)
    own = _changed(records, w, "DiagnosticReport", w.dr_prelim2["id"], conclusion="Technologist's note.")
    m.check("update own preliminary report", records.update("DiagnosticReport", own["id"], own, tok), 200)
    approve = _changed(records, w, "DiagnosticReport", w.dr_prelim2["id"], status="final")
    m.check("approve own report", records.update("DiagnosticReport", approve["id"], approve, tok), {403, 422})
    m.check("update a doctor's report", records.update("DiagnosticReport", w.dr_final1["id"],
                                                       _current(records, w, "DiagnosticReport", w.dr_final1["id"]), tok), 404)  # fmt: skip
    m.check("delete own report", records.delete("DiagnosticReport", w.dr_prelim2["id"], tok), 403)
    m.check("another technologist reads it", records.read("DiagnosticReport", w.dr_prelim1["id"], w.tech2.token), 404)

    m.check("create Binary (any patient)", records.create("Binary", rl.binary_json(w.pat2.fhir_user, b"tech"), tok), 201)
    m.check("read own Binary", records.read("Binary", w.bin_prelim1["id"], tok), 200)
    m.check("read a doctor's Binary", records.read("Binary", w.bin_final1["id"], tok), 404)
    m.check("another technologist reads it", records.read("Binary", w.bin_prelim1["id"], w.tech2.token), 404)
    m.check("search Binary", records.search("Binary", {"_id": w.bin_prelim1["id"]}, tok), 403)
    m.check("update Binary", records.update("Binary", w.bin_prelim1["id"], _current(records, w, "Binary", w.bin_prelim1["id"]), tok), {403, 405})
    m.check("delete Binary", records.delete("Binary", w.bin_prelim1["id"], tok), 403)
    m.done()
    assert _current(records, w, "DiagnosticReport", w.dr_prelim2["id"])["status"] == "preliminary"


def test_doctor(records, world):
    w, m, tok = world, Matrix("doctor"), world.doc1.token
    m.check("read assigned Patient", records.read("Patient", w.pat1.id, tok), 200)
    m.check("read another doctor's Patient", records.read("Patient", w.pat2.id, tok), 404)
    m.check("vread another doctor's Patient", records.vread("Patient", w.pat2.id, 1, tok), 404)
    m.search("search Patient", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), {w.pat1.id})
    m.search("search Patient by general-practitioner", records.search("Patient", {"general-practitioner": w.doc2.fhir_user}, tok), set())
    m.check("create Patient", records.create("Patient", rl.patient_body(), tok), 403)
    m.check("update assigned Patient", records.update("Patient", w.pat1.id, _current(records, w, "Patient", w.pat1.id), tok), 403)
    m.check("delete assigned Patient", records.delete("Patient", w.pat1.id, tok), 403)
    m.check("read Practitioner", records.read("Practitioner", w.doc2.id, tok), 200)
    m.search("search Practitioner", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok),
             {w.doc1.id, w.doc2.id, w.prac["id"]})  # fmt: skip
    m.check("create Practitioner", records.create("Practitioner", rl.practitioner_body(), tok), 403)
    m.check("update own Practitioner", records.update("Practitioner", w.doc1.id, _current(records, w, "Practitioner", w.doc1.id), tok), 403)

    m.check("read a technologist's report on an assigned patient", records.read("DiagnosticReport", w.dr_prelim1["id"], tok), 200)
    m.check("read own report", records.read("DiagnosticReport", w.dr_final1["id"], tok), 200)
    m.check("read another doctor's patient's report", records.read("DiagnosticReport", w.dr_final2["id"], tok), 404)
    m.check("read a preliminary report of another doctor's patient", records.read("DiagnosticReport", w.dr_prelim2["id"], tok), 404)
    m.check("vread another doctor's patient's report", records.vread("DiagnosticReport", w.dr_final2["id"], 1, tok), 404)
    m.check("history of another doctor's patient's report", records.history("DiagnosticReport", w.dr_final2["id"], tok), 404)
    m.search("search reports", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|"}, tok),
             {w.dr_prelim1["id"], w.dr_final1["id"]})  # fmt: skip
    m.search("search another doctor's patient's reports", records.search("DiagnosticReport", {"patient": w.pat2.fhir_user}, tok), set())
    created = records.create("DiagnosticReport", rl.report_body(w.pat1.fhir_user, status="registered"), tok)
    m.check("create a report for an assigned patient", created, 201)
    other = records.create("DiagnosticReport", rl.report_body(w.pat2.fhir_user), tok)
    m.check("create a report for another doctor's patient", other, 422)
    upd = _changed(records, w, "DiagnosticReport", w.dr_prelim1["id"], conclusion="Reviewed.")
    m.check("update a report of an assigned patient", records.update("DiagnosticReport", upd["id"], upd, tok), 200)
    m.check("update another doctor's patient's report", records.update("DiagnosticReport", w.dr_final2["id"],
                                                                        _current(records, w, "DiagnosticReport", w.dr_final2["id"]), tok), 404)  # fmt: skip
    moved = _changed(records, w, "DiagnosticReport", w.dr_final1["id"], subject={"reference": w.pat2.fhir_user})
    m.check("move a report to another doctor's patient", records.update("DiagnosticReport", moved["id"], moved, tok), 422)
    m.check("delete a report", records.delete("DiagnosticReport", w.dr_final1["id"], tok), 403)

    m.check("create a Binary for an assigned patient", records.create("Binary", rl.binary_json(w.pat1.fhir_user, b"doc"), tok), 201)
    m.check("create a Binary for another doctor's patient",
            records.create("Binary", rl.binary_json(w.pat2.fhir_user, b"doc"), tok), {403, 404, 422})  # fmt: skip
    m.check("read a technologist's Binary of an assigned patient", records.read("Binary", w.bin_prelim1["id"], tok), 200)
    m.check("read own Binary", records.read("Binary", w.bin_final1["id"], tok), 200)
    m.check("read another doctor's patient's Binary", records.read("Binary", w.bin_other2["id"], tok), 404)
    m.check("search Binary", records.search("Binary", {"_id": w.bin_final1["id"]}, tok), 403)
    m.check("update Binary", records.update("Binary", w.bin_final1["id"], _current(records, w, "Binary", w.bin_final1["id"]), tok), {403, 405})
    m.check("delete Binary", records.delete("Binary", w.bin_final1["id"], tok), 403)
    m.done()
    assert _current(records, w, "DiagnosticReport", w.dr_final1["id"])["subject"]["reference"] == w.pat1.fhir_user


def test_approval_stamps_the_interpreter_and_shows_the_report_to_the_patient(records, world):
    w = world
    prelim = records.must_create("DiagnosticReport", rl.report_body(w.pat1.fhir_user, conclusion="Pending review."), w.tech1.token)
    assert_outcome(records.read("DiagnosticReport", prelim["id"], w.pat1.token), 404, what="patient, preliminary report")
    final = records.must_update("DiagnosticReport", {**prelim, "status": "final"}, w.doc1.token, if_match=1)
    assert w.doc1.fhir_user in [r.get("reference") for r in final.get("resultsInterpreter") or []], final
    seen = records.must_read("DiagnosticReport", prelim["id"], w.pat1.token)
    assert seen == final
    assert_outcome(records.read("DiagnosticReport", prelim["id"], w.pat2.token), 404, what="another patient")
    # The patient sees only the final version: vread of the preliminary one stays hidden.
    assert_outcome(records.vread("DiagnosticReport", prelim["id"], 1, w.pat1.token), 404, what="patient, preliminary version")
    # A technologist cannot approve, a doctor of another patient cannot either.
    other = records.must_create("DiagnosticReport", rl.report_body(w.pat1.fhir_user), w.tech1.token)
    assert_outcome(records.update("DiagnosticReport", other["id"], {**other, "status": "final"}, w.doc2.token), 404)


# --------------------------------------------------------------------------- patients


def test_patient(records, world):
    w, m, tok = world, Matrix("patient"), world.pat1.token
    m.check("read own Patient", records.read("Patient", w.pat1.id, tok), 200)
    m.check("vread own Patient", records.vread("Patient", w.pat1.id, 1, tok), 200)
    m.check("read another Patient", records.read("Patient", w.pat2.id, tok), 404)
    m.check("read an unknown Patient", records.read("Patient", str(uuid.uuid4()), tok), 404)
    m.check("search Patient (no s scope)", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), 403)
    m.check("create Patient", records.create("Patient", rl.patient_body(), tok), 403)
    m.check("update own Patient", records.update("Patient", w.pat1.id, _current(records, w, "Patient", w.pat1.id), tok), 403)
    m.check("delete own Patient", records.delete("Patient", w.pat1.id, tok), 403)
    m.check("read Practitioner", records.read("Practitioner", w.doc1.id, tok), 403)
    m.check("search Practitioner", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok), 403)

    m.check("read own final report", records.read("DiagnosticReport", w.dr_final1["id"], tok), 200)
    m.check("read own preliminary report", records.read("DiagnosticReport", w.dr_prelim1["id"], tok), 404)
    m.check("history of own preliminary report", records.history("DiagnosticReport", w.dr_prelim1["id"], tok), 404)
    m.check("read another patient's final report", records.read("DiagnosticReport", w.dr_final2["id"], tok), 404)
    m.search("search reports", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|"}, tok), {w.dr_final1["id"]})
    m.search("search another patient's reports", records.search("DiagnosticReport", {"patient": w.pat2.fhir_user}, tok), set())
    m.check("create a report", records.create("DiagnosticReport", rl.report_body(w.pat1.fhir_user), tok), 403)
    m.check("update own report", records.update("DiagnosticReport", w.dr_final1["id"],
                                                _current(records, w, "DiagnosticReport", w.dr_final1["id"]), tok), 403)  # fmt: skip
    m.check("delete own report", records.delete("DiagnosticReport", w.dr_final1["id"], tok), 403)

    m.check("read the Binary of own final report", records.read("Binary", w.bin_final1["id"], tok), 200)
    m.check("download it", records.read("Binary", w.bin_final1["id"], tok, accept="*/*"), 200)
    m.check("read the Binary of own preliminary report", records.read("Binary", w.bin_prelim1["id"], tok), 404)
    m.check("read another patient's Binary", records.read("Binary", w.bin_other2["id"], tok), 404)
    m.check("create a Binary", records.create("Binary", rl.binary_json(w.pat1.fhir_user, b"mine"), tok), 403)
    m.check("search Binary", records.search("Binary", {"_id": w.bin_final1["id"]}, tok), 403)
    m.check("other patient reads patient 1's final report", records.read("DiagnosticReport", w.dr_final1["id"], w.pat2.token), 404)
    m.check("other patient reads patient 1's Binary", records.read("Binary", w.bin_final1["id"], w.pat2.token), 404)
    m.done()


# --------------------------------------------------------------------------- EHR clients


def test_trusted_ehr_client(records, world):
    w, m, tok = world, Matrix("trusted EHR"), world.trusted.token
    for pat in (w.pat1, w.pat2):
        m.check(f"read {pat.fhir_user}", records.read("Patient", pat.id, tok), 200)
    m.search("search Patient", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), {w.pat1.id, w.pat2.id})
    reports = {w.dr_prelim1["id"], w.dr_final1["id"], w.dr_final2["id"], w.dr_prelim2["id"]}
    for rid in reports:
        m.check(f"read report {rid}", records.read("DiagnosticReport", rid, tok), 200)
    m.search("search reports", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|"}, tok), reports)
    for b in (w.bin_prelim1, w.bin_final1, w.bin_other2):
        m.check(f"read Binary {b['id']}", records.read("Binary", b["id"], tok), 200)
    m.check("search Binary (no s scope)", records.search("Binary", {"_id": w.bin_final1["id"]}, tok), 403)
    m.check("create Patient", records.create("Patient", rl.patient_body(), tok), 403)
    m.check("update Patient", records.update("Patient", w.pat1.id, _current(records, w, "Patient", w.pat1.id), tok), 403)
    m.check("delete Patient", records.delete("Patient", w.pat1.id, tok), 403)
    m.check("create report", records.create("DiagnosticReport", rl.report_body(w.pat1.fhir_user), tok), 403)
    m.check("update report", records.update("DiagnosticReport", w.dr_final1["id"],
                                            _current(records, w, "DiagnosticReport", w.dr_final1["id"]), tok), 403)  # fmt: skip
    m.check("delete report", records.delete("DiagnosticReport", w.dr_final1["id"], tok), 403)
    m.check("create Binary", records.create("Binary", rl.binary_json(w.pat1.fhir_user, b"x"), tok), 403)
    m.check("read Practitioner (no scope)", records.read("Practitioner", w.doc1.id, tok), 403)
    m.check("search Practitioner (no scope)", records.search("Practitioner", {"identifier": f"{w.psys}|"}, tok), 403)
    m.done()


def test_untrusted_ehr_client_sees_nothing_yet(records, world):
    w, m, tok = world, Matrix("untrusted EHR"), world.untrusted.token
    m.check("read Patient", records.read("Patient", w.pat1.id, tok), 404)
    m.search("search Patient", records.search("Patient", {"identifier": f"{w.isys}|"}, tok), set())
    m.check("read final report", records.read("DiagnosticReport", w.dr_final1["id"], tok), 404)
    m.search("search reports", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|"}, tok), set())
    m.search("search reports with _summary=count", records.search("DiagnosticReport", {"identifier": f"{w.rsys}|", "_summary": "count"}, tok), set())
    m.check("read Binary", records.read("Binary", w.bin_final1["id"], tok), 404)
    m.check("read Practitioner (no scope)", records.read("Practitioner", w.doc1.id, tok), 403)
    m.check("create Patient (no c scope)", records.create("Patient", rl.patient_body(), tok), 403)
    m.done()


def test_ehr_client_scopes_are_per_type(records, world, actors):
    """A trusted client with only system/DiagnosticReport.rs: reports yes, Patients no (not even
    as _include), Binaries no."""
    w = world
    ehr = actors.ehr(["system/DiagnosticReport.rs"], trusted=True, name="E2E report-only EHR")
    m, tok = Matrix("report-only EHR"), ehr.token
    m.check("read report", records.read("DiagnosticReport", w.dr_final1["id"], tok), 200)
    m.check("read Patient", records.read("Patient", w.pat1.id, tok), 403)
    m.check("read Binary", records.read("Binary", w.bin_final1["id"], tok), 403)
    r = records.search("DiagnosticReport", {"identifier": f"{w.rsys}|", "_include": "DiagnosticReport:patient"}, tok)
    m.search("search reports with _include", r, {w.dr_prelim1["id"], w.dr_final1["id"], w.dr_final2["id"], w.dr_prelim2["id"]})
    if r.status_code == 200:
        assert not rl.entries(r.json(), "include"), "a client without a Patient scope got Patients through _include"
    m.done()


# --------------------------------------------------------------------------- across interactions


def test_hidden_and_unknown_look_alike(records, world):
    w = world
    hidden = records.read("DiagnosticReport", w.dr_final2["id"], w.doc1.token)
    unknown = records.read("DiagnosticReport", str(uuid.uuid4()), w.doc1.token)
    a, b = assert_outcome(hidden, 404), assert_outcome(unknown, 404)
    assert [(i["severity"], i["code"]) for i in a["issue"]] == [(i["severity"], i["code"]) for i in b["issue"]]
    assert hidden.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")


def test_include_and_history_respect_the_compartment(records, world):
    w = world
    r = records.must_search("DiagnosticReport", {"identifier": f"{w.rsys}|", "_include": "DiagnosticReport:patient"}, w.doc1.token)
    assert {e["resource"]["id"] for e in rl.entries(r, "include")} == {w.pat1.id}
    r = records.must_search("DiagnosticReport", {"identifier": f"{w.rsys}|", "_include": "DiagnosticReport:patient"}, w.pat1.token)
    assert set(rl.ids(r)) == {w.dr_final1["id"]} and {e["resource"]["id"] for e in rl.entries(r, "include")} == {w.pat1.id}
    hidden = {w.dr_final2["id"], w.dr_prelim2["id"]}
    for who, tok, may_not in (("doctor", w.doc1.token, hidden), ("patient", w.pat1.token, hidden | {w.dr_prelim1["id"]})):
        h = rl.assert_bundle(records.history("DiagnosticReport", None, tok, {"_since": w.start, "_count": 1000}), "history")
        seen = {e["resource"]["id"] for e in h.get("entry") or [] if "resource" in e}
        assert not seen & may_not, f"{who}: type history shows reports it may not see: {seen & may_not}"
        assert w.dr_final1["id"] in seen, f"{who}: type history lacks a visible report"
    for e in rl.assert_bundle(records.history("DiagnosticReport", None, w.pat1.token, {"_since": w.start, "_count": 1000}), "history").get("entry") or []:
        if "resource" in e:
            assert e["resource"]["status"] in rl.PATIENT_VISIBLE_STATUSES, f"patient sees a {e['resource']['status']} version"
    # A technologist's type history shows only the reports it wrote, not a doctor's.
    h = rl.assert_bundle(records.history("DiagnosticReport", None, w.tech1.token, {"_since": w.start, "_count": 1000}), "history")
    seen = {e["resource"]["id"] for e in h.get("entry") or [] if "resource" in e}
    assert w.dr_prelim1["id"] in seen and w.dr_final1["id"] not in seen, f"technologist's type history: {seen}"
    # Type history needs the s scope.
    assert_outcome(records.history("DiagnosticReport", None, w.desk.token, {"_since": w.start}), 403)


def test_no_token_is_401_everywhere(records, world):
    w = world
    failures = []
    for rtype, rid in (("Patient", w.pat1.id), ("Practitioner", w.doc1.id), ("DiagnosticReport", w.dr_final1["id"]),
                       ("Binary", w.bin_final1["id"])):  # fmt: skip
        for name, r in {
            "read": records.read(rtype, rid, None),
            "vread": records.vread(rtype, rid, 1, None),
            "search": records.search(rtype, {"_id": rid}, None),
            "create": records.create(rtype, _bodies(w)[rtype], None),
            "update": records.update(rtype, rid, {"resourceType": rtype, "id": rid}, None),
            "delete": records.delete(rtype, rid, None),
            "history": records.history(rtype, rid, None),
        }.items():
            try:
                assert_outcome(r, 401, code="login", what=f"{name} {rtype}")
                assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), r.headers
            except AssertionError as e:
                failures.append(str(e).splitlines()[0])
    raw = records.create("Binary", b"raw", None, headers={"Content-Type": "application/pdf", "X-Security-Context": w.pat1.fhir_user})
    try:
        assert_outcome(raw, 401, what="raw Binary upload")
    except AssertionError as e:
        failures.append(str(e).splitlines()[0])
    assert not failures, "\n".join(failures)
