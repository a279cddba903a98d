"""Records' FHIR search, black-box: every search parameter of the spec with matching and
non-matching values (token forms, date prefixes and partial dates with FHIR's range
semantics, reference forms, string default/:exact/:contains with case and accents), AND/OR,
_count, _sort, _total, _summary=count, _include, keyset paging while rows are added, POST
_search, unknown parameters (lenient vs strict) and invalid values.

Every test makes its own code/identifier system (recordslib.new_system) and searches within
it, so other data in the shared stack never matters. Searches also go through an independent
client, fhirpy's SyncFHIRClient; every answer passes fhirkit (recordslib's response hook).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest
import recordslib as rl
from recordslib import assert_bundle, assert_outcome

V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"


@pytest.fixture(scope="module")
def patient2(records, rec_receptionist, rec_doctor) -> dict:
    """A second Patient assigned to rec_doctor (no account needed)."""
    return records.must_create("Patient", rl.patient_body(system=rl.new_system(), gp=rec_doctor.fhir_user),
                               rec_receptionist.token)  # fmt: skip


def _report(records, doctor, subject: str, csys: str, code: str = "c", **kw) -> dict:
    return records.must_create("DiagnosticReport", rl.report_body(subject, code=(csys, code), **kw), doctor.token)


def check_cases(records, rtype: str, token: str, names: dict[str, str], base: list[tuple[str, str]],
                cases: list[tuple[list[tuple[str, str]] | dict, set[str]]]) -> None:  # fmt: skip
    """Run each search (base params + the case's) and compare the matches, by name."""
    by_id = {v: k for k, v in names.items()}
    failures = []
    for params, want in cases:
        extra = list(params.items()) if isinstance(params, dict) else list(params)
        bundle = records.must_search(rtype, base + extra + [("_count", "100")], token)
        got_ids = rl.ids(bundle)
        got = {by_id.get(i, f"<other {i}>") for i in got_ids}
        if got != want or len(got_ids) != len(set(got_ids)):
            failures.append(f"{rtype}?{urlencode(extra)}: got {sorted(got)} ({len(got_ids)} entries), want {sorted(want)}")
        elif bundle.get("total") is not None and bundle["total"] != len(want):
            failures.append(f"{rtype}?{urlencode(extra)}: total {bundle['total']} != {len(want)}")
    assert not failures, f"{len(failures)} of {len(cases)} searches wrong:\n" + "\n".join(failures)


# --------------------------------------------------------------------------- token


def test_token_forms(records, rec_doctor, rec_patient):
    csys, isys = rl.new_system("code"), rl.new_system("acc")
    va, vb, vc = (f"{x}-{uuid.uuid4().hex[:10]}" for x in "abc")
    subj = rec_patient.fhir_user
    a = _report(records, rec_doctor, subj, csys, "x", status="preliminary", system=isys, value=va, category=(V2_0074, "LAB"))
    b = _report(records, rec_doctor, subj, csys, "y", status="final", system=isys, value=vb, category=(V2_0074, "RAD"))
    c = rl.report_body(subj, code=(csys, "x"), status="registered")
    c["identifier"] = [{"value": vc}]  # no system
    c = records.must_create("DiagnosticReport", c, rec_doctor.token)
    names = {"A": a["id"], "B": b["id"], "C": c["id"]}
    other = rl.new_system("none")
    check_cases(records, "DiagnosticReport", rec_doctor.token, names, [], [
        ({"identifier": f"{isys}|{va}"}, {"A"}),
        ({"identifier": va}, {"A"}),
        ({"identifier": f"|{va}"}, set()),
        ({"identifier": f"|{vc}"}, {"C"}),
        ({"identifier": vc}, {"C"}),
        ({"identifier": f"{isys}|"}, {"A", "B"}),
        ({"identifier": f"{other}|{va}"}, set()),
        ({"identifier": f"{isys}|{va},{isys}|{vb}"}, {"A", "B"}),
        ({"identifier": f"{isys}|{va.upper()}"}, set()),
        ({"code": f"{csys}|x"}, {"A", "C"}),
        ({"code": f"{csys}|"}, {"A", "B", "C"}),
        ({"code": f"{csys}|x,{csys}|y"}, {"A", "B", "C"}),
        ({"code": f"{other}|x"}, set()),
        ([("code", "x"), ("identifier", f"{isys}|")], {"A"}),
        ([("code", f"{csys}|"), ("status", "final")], {"B"}),
        ([("code", f"{csys}|"), ("status", "final,registered")], {"B", "C"}),
        ([("code", f"{csys}|"), ("status", "amended")], set()),
        ([("code", f"{csys}|"), ("category", f"{V2_0074}|LAB")], {"A"}),
        ([("code", f"{csys}|"), ("category", "RAD")], {"B"}),
        ([("code", f"{csys}|"), ("category", f"{V2_0074}|")], {"A", "B"}),
        ([("code", f"{csys}|"), ("category", f"{other}|LAB")], set()),
        ({"_id": a["id"]}, {"A"}),
        ({"_id": f"{a['id']},{b['id']}"}, {"A", "B"}),
        ({"_id": str(uuid.uuid4())}, set()),
        # Two different parameters AND; the same one repeated ANDs too.
        ([("identifier", f"{isys}|"), ("identifier", f"{isys}|{vb}")], {"B"}),
        ([("code", f"{csys}|x"), ("code", f"{csys}|y")], set()),
    ])  # fmt: skip


def test_comma_or_is_the_same_encoded_or_not(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    a = _report(records, rec_doctor, rec_patient.fhir_user, csys, "x")
    b = _report(records, rec_doctor, rec_patient.fhir_user, csys, "y")
    raw = records.get(f"{records.base}/DiagnosticReport?code={csys}|x,{csys}|y", rec_doctor.token)
    enc = records.search("DiagnosticReport", {"code": f"{csys}|x,{csys}|y"}, rec_doctor.token)
    assert set(rl.ids(assert_bundle(raw))) == set(rl.ids(assert_bundle(enc))) == {a["id"], b["id"]}


# --------------------------------------------------------------------------- date


def test_date_prefixes_and_partial_dates(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    subj = rec_patient.fhir_user
    x = _report(records, rec_doctor, subj, csys, effective="2024-05-10T12:00:00Z", issued="2024-05-11T08:00:00.000Z")
    y = _report(records, rec_doctor, subj, csys, issued="2024-06-04T08:00:00Z",
                effectivePeriod={"start": "2024-06-01T12:00:00Z", "end": "2024-06-03T12:00:00Z"})  # fmt: skip
    z = _report(records, rec_doctor, subj, csys, effective="2023-12-31T12:00:00Z")
    names = {"X": x["id"], "Y": y["id"], "Z": z["id"]}
    cases = [
        ("2024", {"X", "Y"}), ("2024-05", {"X"}), ("2024-05-10", {"X"}), ("2024-05-11", set()),
        ("eq2024-05-10", {"X"}), ("2024-05-10T12:00:00Z", {"X"}), ("2024-05-10T12:00:01Z", set()),
        ("2024-05-10T14:00:00+02:00", {"X"}),
        ("ne2024-05-10", {"Y", "Z"}),
        ("gt2024-05-09", {"X", "Y"}), ("gt2024-05-10", {"Y"}),
        ("lt2024-05-11", {"X", "Z"}), ("lt2024-05-10", {"Z"}),
        ("ge2024-05-10", {"X", "Y"}), ("ge2024-05-11", {"Y"}),
        ("le2024-05-10", {"X", "Z"}), ("le2024-05-09", {"Z"}),
        # The period (June 1 12:00 to June 3 12:00) against partial dates.
        ("2024-06", {"Y"}), ("2024-06-02", set()), ("ge2024-06-03", {"Y"}), ("gt2024-06-03", set()),
        ("lt2024-06-02", {"X", "Y", "Z"}), ("le2024-06-01", {"X", "Y", "Z"}), ("lt2024-06-01", {"X", "Z"}),
        ("2023", {"Z"}), ("2023-12-31T12:00:00Z", {"Z"}), ("gt2025", set()), ("lt2023", set()),
        ("2023,2024-05", {"X", "Z"}),
    ]
    base = [("code", f"{csys}|")]
    check_cases(records, "DiagnosticReport", rec_doctor.token, names, base, [({"date": q}, want) for q, want in cases])
    check_cases(records, "DiagnosticReport", rec_doctor.token, names, base, [
        ([("date", "ge2024-01-01"), ("date", "lt2024-06-01")], {"X"}),
        ([("date", "ge2024-01-01"), ("date", "lt2024-01-02")], set()),
        ({"issued": "2024-05-11"}, {"X"}),
        ({"issued": "ge2024-06"}, {"Y"}),
        ({"issued": "lt2024"}, set()),
        ({"issued": "le2024-06-04T08:00:00Z"}, {"X", "Y"}),
        ({"issued": "gt2024-05-11T08:00:00Z"}, {"Y"}),
    ])  # fmt: skip


def test_birthdate(records, rec_receptionist):
    isys = rl.new_system("mrn")
    tok = rec_receptionist.token
    names = {}
    for name, born in (("March85", "1985-03-15"), ("Nov85", "1985-11-02"), ("Y90", "1990"), ("Jan90", "1990-01-01")):
        names[name] = records.must_create("Patient", rl.patient_body(system=isys, birth_date=born), tok)["id"]
    check_cases(records, "Patient", tok, names, [("identifier", f"{isys}|")], [
        ({"birthdate": "1985"}, {"March85", "Nov85"}),
        ({"birthdate": "1985-03"}, {"March85"}),
        ({"birthdate": "1985-03-15"}, {"March85"}),
        ({"birthdate": "eq1985-03-16"}, set()),
        ({"birthdate": "ge1985-06-01"}, {"Nov85", "Y90", "Jan90"}),
        ({"birthdate": "lt1985-03-15"}, set()),
        ({"birthdate": "le1985-03-15"}, {"March85"}),
        ({"birthdate": "ne1985"}, {"Y90", "Jan90"}),
        ({"birthdate": "gt1989"}, {"Y90", "Jan90"}),
        # A birth year is the whole year: not within January 1st, but overlapping it.
        ({"birthdate": "1990-01-01"}, {"Jan90"}),
        ({"birthdate": "1990"}, {"Y90", "Jan90"}),
        ({"birthdate": "ge1990-06-01"}, {"Y90"}),
        ({"birthdate": "1985-03-15,1990-01-01"}, {"March85", "Jan90"}),
    ])  # fmt: skip


def test_last_updated_and_id(records, rec_receptionist, rec_admin, ehr_writer, rec_patient):
    tok = rec_receptionist.token
    isys = rl.new_system("mrn")
    p = records.must_create("Patient", rl.patient_body(system=isys), tok)
    lu = p["meta"]["lastUpdated"]
    day = lu[:10]
    names = {"P": p["id"]}
    check_cases(records, "Patient", tok, names, [("identifier", f"{isys}|")], [
        ({"_lastUpdated": f"ge{lu}"}, {"P"}),
        ({"_lastUpdated": f"le{lu}"}, {"P"}),
        ({"_lastUpdated": f"lt{lu}"}, set()),
        ({"_lastUpdated": day}, {"P"}),
        ({"_lastUpdated": "gt2000"}, {"P"}),
        ({"_lastUpdated": "lt2000-01-01"}, set()),
        ({"_id": p["id"]}, {"P"}),
        ({"_id": str(uuid.uuid4())}, set()),
    ])  # fmt: skip
    # Practitioner and Binary support _id and _lastUpdated as well.
    prac = records.must_create("Practitioner", rl.practitioner_body(), rec_admin.token)
    assert records.search_ids("Practitioner", {"_id": prac["id"], "_lastUpdated": f"ge{prac['meta']['lastUpdated']}"},
                              rec_admin.token) == [prac["id"]]  # fmt: skip
    assert records.search_ids("Practitioner", {"_id": prac["id"], "_lastUpdated": "lt2000"}, rec_admin.token) == []
    b = records.must_create("Binary", rl.binary_json(rec_patient.fhir_user, b"e2e-search"), ehr_writer.token)
    assert records.search_ids("Binary", {"_id": b["id"]}, ehr_writer.token) == [b["id"]]
    assert records.search_ids("Binary", {"_id": b["id"], "_lastUpdated": f"ge{b['meta']['lastUpdated']}"},
                              ehr_writer.token) == [b["id"]]  # fmt: skip
    assert records.search_ids("Binary", {"_id": b["id"], "_lastUpdated": "lt2000"}, ehr_writer.token) == []


# --------------------------------------------------------------------------- reference


def test_reference_forms(records, rec_doctor, rec_receptionist, rec_admin, rec_patient, patient2):
    csys = rl.new_system("code")
    p1, p2 = rec_patient.id, patient2["id"]
    sr = f"sr-{uuid.uuid4().hex[:12]}"
    a = _report(records, rec_doctor, f"Patient/{p1}", csys, performer=[rec_doctor.fhir_user],
                basedOn=[{"reference": f"ServiceRequest/{sr}"}])  # fmt: skip
    b = _report(records, rec_doctor, f"Patient/{p2}", csys)
    names = {"A": a["id"], "B": b["id"]}
    unknown = str(uuid.uuid4())
    doc = rec_doctor.id
    check_cases(records, "DiagnosticReport", rec_doctor.token, names, [("code", f"{csys}|")], [
        ({"patient": f"Patient/{p1}"}, {"A"}),
        ({"patient": p1}, {"A"}),
        ({"patient": f"{records.base}/Patient/{p1}"}, {"A"}),
        ({"subject": f"Patient/{p1}"}, {"A"}),
        ({"subject": p2}, {"B"}),
        ({"subject": f"Patient/{p2}"}, {"B"}),
        ({"patient": f"Patient/{unknown}"}, set()),
        ({"patient": f"Patient/{p1},Patient/{p2}"}, {"A", "B"}),
        ({"performer": f"Practitioner/{doc}"}, {"A"}),
        ({"performer": doc}, {"A"}),
        ({"performer": f"Practitioner/{unknown}"}, set()),
        ({"based-on": f"ServiceRequest/{sr}"}, {"A"}),
        ({"based-on": f"ServiceRequest/{sr}x"}, set()),
    ])  # fmt: skip

    isys = rl.new_system("mrn")
    tok = rec_receptionist.token
    other_doc = records.must_create("Practitioner", rl.practitioner_body(), rec_admin.token)
    mine = records.must_create("Patient", rl.patient_body(system=isys, gp=rec_doctor.fhir_user), tok)
    theirs = records.must_create("Patient", rl.patient_body(system=isys, gp=f"Practitioner/{other_doc['id']}"), tok)
    both = records.must_create("Patient", rl.patient_body(system=isys, gp=[rec_doctor.fhir_user, f"Practitioner/{other_doc['id']}"]), tok)
    nobody = records.must_create("Patient", rl.patient_body(system=isys), tok)
    names = {"mine": mine["id"], "theirs": theirs["id"], "both": both["id"], "nobody": nobody["id"]}
    check_cases(records, "Patient", tok, names, [("identifier", f"{isys}|")], [
        ({"general-practitioner": rec_doctor.fhir_user}, {"mine", "both"}),
        ({"general-practitioner": doc}, {"mine", "both"}),
        ({"general-practitioner": f"{records.base}/{rec_doctor.fhir_user}"}, {"mine", "both"}),
        ({"general-practitioner": f"Practitioner/{other_doc['id']}"}, {"theirs", "both"}),
        ({"general-practitioner": f"Practitioner/{unknown}"}, set()),
        ([("general-practitioner", rec_doctor.fhir_user), ("general-practitioner", f"Practitioner/{other_doc['id']}")], {"both"}),
        ({}, {"mine", "theirs", "both", "nobody"}),
    ])  # fmt: skip


# --------------------------------------------------------------------------- string


def test_string_search_on_patients(records, rec_receptionist):
    tok = rec_receptionist.token
    isys = rl.new_system("mrn")
    tag = rl.letters(10)
    TAG = tag.upper()
    p1 = records.must_create("Patient", {**rl.patient_body(system=isys), "name": [{"family": f"Müller{tag}", "given": ["Zoë", "Anna"]}]}, tok)
    p2 = records.must_create("Patient", {**rl.patient_body(system=isys), "name": [{"family": f"Muller{tag}son", "given": ["Bob"]}]}, tok)
    p3 = records.must_create("Patient", {**rl.patient_body(system=isys), "name": [{"family": f"Z{tag}", "given": ["Émile"]}]}, tok)
    names = {"P1": p1["id"], "P2": p2["id"], "P3": p3["id"]}
    check_cases(records, "Patient", tok, names, [], [
        ({"family": f"muller{tag}"}, {"P1", "P2"}),
        ({"family": f"MÜLLER{TAG}"}, {"P1", "P2"}),
        ({"family": f"Müller{tag}"}, {"P1", "P2"}),
        ({"family": f"muller{tag}s"}, {"P2"}),
        ({"family": f"muller{tag}x"}, set()),
        ({"family": tag}, set()),
        ({"family:exact": f"Müller{tag}"}, {"P1"}),
        ({"family:exact": f"muller{tag}"}, set()),
        ({"family:exact": f"Muller{tag}"}, set()),
        ({"family:exact": f"Muller{tag}son"}, {"P2"}),
        ({"family:contains": tag[2:8]}, {"P1", "P2", "P3"}),
        ({"family:contains": f"LLER{TAG[:4]}"}, {"P1", "P2"}),
        ({"family:contains": f"{tag[-3:]}son"}, {"P2"}),
        ({"family": f"muller{tag}son,z{tag}"}, {"P2", "P3"}),
        ([("family", f"muller{tag}"), ("given", "zoe")], {"P1"}),
        ([("family", f"muller{tag}"), ("given", "ann")], {"P1"}),
        ([("family", f"muller{tag}"), ("given", "bo")], {"P2"}),
        ([("family", f"muller{tag}"), ("given", "oe")], set()),
        ([("family:contains", tag), ("given", "emile")], {"P3"}),
        ([("family:contains", tag), ("given:exact", "Émile")], {"P3"}),
        ([("family:contains", tag), ("given:exact", "Emile")], set()),
        ([("family", f"muller{tag}"), ("given", "zoe"), ("given", "anna")], {"P1"}),
        ([("family", f"muller{tag}"), ("given", "zoe"), ("given", "bob")], set()),
        ({"name": f"muller{tag}"}, {"P1", "P2"}),
        ([("name", "zoe"), ("identifier", f"{isys}|")], {"P1"}),
        ([("name", f"z{tag}")], {"P3"}),
        ({"name:contains": tag}, {"P1", "P2", "P3"}),
    ])  # fmt: skip


def test_practitioner_name_and_identifier(records, rec_admin, rec_receptionist):
    tag = rl.letters(10)
    isys = rl.new_system("npi")
    a = records.must_create("Practitioner", rl.practitioner_body(family=f"Gómez{tag}", given="Ana", system=isys, value="a1"),
                            rec_admin.token)  # fmt: skip
    b = records.must_create("Practitioner", rl.practitioner_body(family=f"Gomes{tag}", given="Bea", system=isys, value="b1"),
                            rec_admin.token)  # fmt: skip
    names = {"A": a["id"], "B": b["id"]}
    for tok in (rec_admin.token, rec_receptionist.token):
        check_cases(records, "Practitioner", tok, names, [], [
            ({"name": f"gomez{tag}"}, {"A"}),
            ({"name": f"GÓMEZ{tag.upper()}"}, {"A"}),
            ({"name:contains": tag}, {"A", "B"}),
            ({"name:exact": f"Gómez{tag}"}, {"A"}),
            ({"name:exact": f"gomez{tag}"}, set()),
            ([("name:contains", tag), ("name", "ana")], {"A"}),
            ({"identifier": f"{isys}|a1"}, {"A"}),
            ({"identifier": f"{isys}|"}, {"A", "B"}),
            ({"identifier": f"{isys}|a1,{isys}|b1"}, {"A", "B"}),
            ({"identifier": f"{isys}|c1"}, set()),
            ({"_id": b["id"]}, {"B"}),
        ])  # fmt: skip


# --------------------------------------------------------------------------- result parameters


def test_count_total_and_summary(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    made = {_report(records, rec_doctor, rec_patient.fhir_user, csys)["id"] for _ in range(5)}
    tok = rec_doctor.token
    q = {"code": f"{csys}|"}
    two = records.must_search("DiagnosticReport", {**q, "_count": 2}, tok)
    assert len(rl.ids(two)) == 2 and two.get("total") == 5 and rl.link(two, "next"), two.get("link")
    zero = records.must_search("DiagnosticReport", {**q, "_count": 0}, tok)
    assert not zero.get("entry") and zero.get("total") == 5, zero
    huge = records.must_search("DiagnosticReport", {**q, "_count": 5000}, tok)
    assert set(rl.ids(huge)) == made and not rl.link(huge, "next")
    none = records.must_search("DiagnosticReport", {**q, "_total": "none"}, tok)
    assert "total" not in none and set(rl.ids(none)) == made, {k: v for k, v in none.items() if k != "entry"}
    for mode in ("accurate", "estimate"):
        b = records.must_search("DiagnosticReport", {**q, "_total": mode}, tok)
        assert isinstance(b.get("total"), int) and set(rl.ids(b)) == made, mode
        if mode == "accurate":
            assert b["total"] == 5
    summary = records.must_search("DiagnosticReport", {**q, "_summary": "count"}, tok)
    assert not summary.get("entry") and summary.get("total") == 5, summary
    assert records.must_search("DiagnosticReport", q, tok).get("total") == 5, "the total is given by default"


def test_sort(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    subj = rec_patient.fhir_user
    mid = _report(records, rec_doctor, subj, csys, effective="2024-02-01T12:00:00Z", issued="2024-03-03T00:00:00Z")
    old = _report(records, rec_doctor, subj, csys, effective="2024-01-01T12:00:00Z", issued="2024-03-01T00:00:00Z")
    new = _report(records, rec_doctor, subj, csys, effective="2024-03-01T12:00:00Z", issued="2024-03-02T00:00:00Z")
    created = [mid["id"], old["id"], new["id"]]
    tok = rec_doctor.token

    def order(sort: str | None) -> list[str]:
        params = {"code": f"{csys}|"}
        if sort is not None:
            params["_sort"] = sort
        return records.search_ids("DiagnosticReport", params, tok)

    assert order("date") == [old["id"], mid["id"], new["id"]]
    assert order("-date") == [new["id"], mid["id"], old["id"]]
    assert order("issued") == [old["id"], new["id"], mid["id"]]
    assert order("-issued") == [mid["id"], new["id"], old["id"]]
    assert order("_lastUpdated") == created
    assert order("-_lastUpdated") == created[::-1]
    assert order(None) == created[::-1], "the default order is -_lastUpdated"
    # Paging keeps the order.
    first = records.must_search("DiagnosticReport", {"code": f"{csys}|", "_sort": "date", "_count": 1}, tok)
    pages = records.pages(first, tok)
    assert [rl.ids(p)[0] for p in pages] == [old["id"], mid["id"], new["id"]]


def test_include_patient(records, rec_doctor, rec_patient, patient2):
    csys = rl.new_system("code")
    tok = rec_doctor.token
    a1 = _report(records, rec_doctor, rec_patient.fhir_user, csys)
    a2 = _report(records, rec_doctor, rec_patient.fhir_user, csys)
    b = _report(records, rec_doctor, f"Patient/{patient2['id']}", csys)
    bundle = records.must_search("DiagnosticReport", {"code": f"{csys}|", "_include": "DiagnosticReport:patient"}, tok)
    assert set(rl.ids(bundle)) == {a1["id"], a2["id"], b["id"]}
    inc = rl.entries(bundle, "include")
    assert sorted(e["resource"]["id"] for e in inc) == sorted([rec_patient.id, patient2["id"]]), "each Patient once"
    assert all(e["resource"]["resourceType"] == "Patient" for e in inc)
    assert bundle.get("total") == 3, "the total counts matches only"
    plain = records.must_search("DiagnosticReport", {"code": f"{csys}|"}, tok)
    assert not rl.entries(plain, "include")
    # Paged: every page includes the Patients of its own matches.
    first = records.must_search("DiagnosticReport", {"code": f"{csys}|", "_include": "DiagnosticReport:patient", "_count": 1}, tok)
    for page in records.pages(first, tok):
        (match,) = rl.entries(page, "match")
        subject = match["resource"]["subject"]["reference"].split("/")[-1]
        assert [e["resource"]["id"] for e in rl.entries(page, "include")] == [subject]


# --------------------------------------------------------------------------- paging


def test_paging_follows_next_without_gaps_or_repeats(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    tok = rec_doctor.token
    subj = rec_patient.fhir_user
    original = [_report(records, rec_doctor, subj, csys)["id"] for _ in range(23)]
    q = {"code": f"{csys}|"}

    default = records.must_search("DiagnosticReport", q, tok)
    assert len(rl.ids(default)) == 20 and default.get("total") == 23, "default _count is 20"
    self_link = rl.link(default, "self")
    assert self_link and self_link.startswith(records.base + "/DiagnosticReport"), self_link

    added: list[str] = []

    def add_two(_page: int) -> None:
        for _ in range(2):
            added.append(_report(records, rec_doctor, subj, csys)["id"])

    for sort in ("_lastUpdated", "-_lastUpdated"):
        first = records.must_search("DiagnosticReport", {**q, "_count": 7, "_sort": sort}, tok)
        pages = records.pages(first, tok, max_pages=12, between=add_two if len(added) < 12 else None)
        seen = [i for p in pages for i in rl.ids(p)]
        assert len(seen) == len(set(seen)), f"{sort}: a row came twice across pages"
        assert set(original) <= set(seen), f"{sort}: rows skipped: {set(original) - set(seen)}"
        assert set(seen) <= set(original) | set(added), "rows of another search"
        for p in pages[:-1]:
            assert len(rl.ids(p)) == 7, "full pages before the last"
        for p in pages:
            for rel in ("self", "next", "previous"):
                u = rl.link(p, rel)
                assert u is None or u.startswith(records.base + "/"), f"{rel} link {u!r}"

    # previous goes back to the same rows.
    first = records.must_search("DiagnosticReport", {**q, "_count": 5, "_sort": "_lastUpdated"}, tok)
    second = assert_bundle(records.get(rl.link(first, "next"), tok))
    third = assert_bundle(records.get(rl.link(second, "next"), tok))
    assert rl.link(first, "previous") is None, "no previous on the first page"
    back = assert_bundle(records.get(rl.link(third, "previous"), tok))
    assert rl.ids(back) == rl.ids(second)
    back2 = assert_bundle(records.get(rl.link(back, "previous"), tok))
    assert rl.ids(back2) == rl.ids(first)
    # The cursor is opaque but the links keep the query.
    nxt = dict(rl.query_of(rl.link(first, "next")))
    assert "_cursor" in nxt and nxt.get("code") == f"{csys}|", nxt

    # An independent client walks the same result set.
    fc = rl.fhirpy_client(records.base, tok)
    walked = fc.resources("DiagnosticReport").search(code=f"{csys}|").limit(9).fetch_all()
    got = [r["id"] for r in walked]
    assert len(got) == len(set(got)) and set(got) == set(original) | set(added)
    assert fc.resources("DiagnosticReport").search(code=f"{csys}|").count() == len(original) + len(added)


# --------------------------------------------------------------------------- POST _search, unknown and invalid


def test_post_search_equals_get(records, rec_doctor, rec_patient, rec_receptionist):
    csys = rl.new_system("code")
    tok = rec_doctor.token
    for i in range(4):
        _report(records, rec_doctor, rec_patient.fhir_user, csys, status="final" if i % 2 else "preliminary",
                effective=f"2024-0{i + 1}-15T12:00:00Z")  # fmt: skip
    params = [("code", f"{csys}|"), ("status", "final,preliminary"), ("date", "ge2024-02"), ("_sort", "-date"), ("_count", "2")]
    got = records.must_search("DiagnosticReport", params, tok)
    posted = records.search_post("DiagnosticReport", params, tok)
    pb = assert_bundle(posted, what="POST _search")
    assert rl.ids(pb) == rl.ids(got) and pb.get("total") == got.get("total") == 3
    # Query string and body combine.
    mixed = records.search_post("DiagnosticReport", params[1:], tok, params=params[:1])
    assert rl.ids(assert_bundle(mixed)) == rl.ids(got)
    # Paging a POSTed search goes on with GET links.
    assert [rl.ids(p) for p in records.pages(pb, tok)] == [rl.ids(p) for p in records.pages(got, tok)]
    # Patients too.
    isys = rl.new_system("mrn")
    p = records.must_create("Patient", rl.patient_body(system=isys), rec_receptionist.token)
    pp = records.search_post("Patient", {"identifier": f"{isys}|"}, rec_receptionist.token)
    assert rl.ids(assert_bundle(pp)) == [p["id"]]
    wrong = records.request("POST", "/Patient/_search", rec_receptionist.token, data=b'{"identifier": "x"}')
    assert_outcome(wrong, {400, 415}, what="POST _search with a JSON body")


def test_unknown_parameters_lenient_and_strict(records, rec_doctor, rec_patient):
    csys = rl.new_system("code")
    tok = rec_doctor.token
    a = _report(records, rec_doctor, rec_patient.fhir_user, csys)
    lenient = records.must_search("DiagnosticReport", {"code": f"{csys}|", "e2e-bogus": "1", "address": "x"}, tok)
    assert rl.ids(lenient) == [a["id"]]
    self_params = dict(rl.query_of(rl.link(lenient, "self")))
    assert "e2e-bogus" not in self_params and "address" not in self_params, f"self link: {rl.link(lenient, 'self')}"
    assert self_params.get("code") == f"{csys}|", f"self link: {rl.link(lenient, 'self')}"
    explicit = records.search("DiagnosticReport", {"code": f"{csys}|", "e2e-bogus": "1"}, tok,
                              headers={"Prefer": "handling=lenient"})  # fmt: skip
    assert rl.ids(assert_bundle(explicit)) == [a["id"]]
    for params in ({"code": f"{csys}|", "e2e-bogus": "1"}, {"code": f"{csys}|", "name": "x"},
                   {"code:text": "x"}, {"code": f"{csys}|", "_elements": "id"}):  # fmt: skip
        assert_outcome(records.search("DiagnosticReport", params, tok, strict=True), 400, what=f"strict {params}")
    ok = records.search("DiagnosticReport", {"code": f"{csys}|"}, tok, strict=True)
    assert rl.ids(assert_bundle(ok)) == [a["id"]], "known parameters are fine in strict mode"
    r = records.search_post("DiagnosticReport", {"code": f"{csys}|", "e2e-bogus": "1"}, tok,
                            headers={"Prefer": "handling=strict"})  # fmt: skip
    assert_outcome(r, 400, what="strict POST _search")


@pytest.mark.parametrize("rtype,params", [
    ("DiagnosticReport", {"date": "2024-13-01"}),
    ("DiagnosticReport", {"date": "xx2024"}),
    ("DiagnosticReport", {"date": "notadate"}),
    ("DiagnosticReport", {"date": "2024-05-10T25:00:00Z"}),
    ("DiagnosticReport", {"issued": "eq"}),
    ("DiagnosticReport", {"_lastUpdated": "yesterday"}),
    ("DiagnosticReport", {"_count": "abc"}),
    ("DiagnosticReport", {"_count": "-1"}),
    ("DiagnosticReport", {"_sort": "status"}),
    ("DiagnosticReport", {"_sort": "date,bogus"}),
    ("Patient", {"birthdate": "1990-02-3x"}),
    ("Patient", {"_sort": "name"}),
    ("Patient", {"_count": "1.5"}),
])  # fmt: skip
def test_invalid_values_are_400(records, rec_doctor, rtype, params):
    assert_outcome(records.search(rtype, params, rec_doctor.token), 400, what=f"{rtype}?{urlencode(params)}")


# --------------------------------------------------------------------------- through fhirpy


def test_fhirpy_client_reads_and_searches(records, rec_doctor, rec_patient, ehr_trusted):
    csys = rl.new_system("code")
    doc = rl.fhirpy_client(records.base, rec_doctor.token)
    # Create through fhirpy too.
    body = rl.report_body(rec_patient.fhir_user, code=(csys, "fp"), effective="2024-07-01T12:00:00Z", status="preliminary")
    made = doc.resource("DiagnosticReport", **{k: v for k, v in body.items() if k != "resourceType"})
    made.save()
    assert made["id"] and rl.UUID_RE.match(made["id"]), made.serialize()
    rl.validate(made.serialize(), "the report fhirpy got back")
    other = _report(records, rec_doctor, rec_patient.fhir_user, csys, "other", effective="2024-08-01T12:00:00Z")
    ehr = rl.fhirpy_client(records.base, ehr_trusted.token)
    for who, fc in (("doctor", doc), ("trusted EHR", ehr)):
        got = fc.get("DiagnosticReport", made["id"])
        rl.validate(dict(got), f"{who}: fhirpy read")
        assert rl.without_meta(dict(got)) == rl.without_meta(records.must_read("DiagnosticReport", made["id"], rec_doctor.token))
        found = fc.resources("DiagnosticReport").search(code=f"{csys}|fp").fetch_all()
        assert [r["id"] for r in found] == [made["id"]], who
        ordered = fc.resources("DiagnosticReport").search(code=f"{csys}|").sort("-date").fetch_all()
        assert [r["id"] for r in ordered] == [other["id"], made["id"]], who
        dated = fc.resources("DiagnosticReport").search(code=f"{csys}|", date="lt2024-07-15").fetch_all()
        assert [r["id"] for r in dated] == [made["id"]], who
        by_patient = fc.resources("DiagnosticReport").search(code=f"{csys}|", patient=rec_patient.id).fetch_all()
        assert {r["id"] for r in by_patient} == {made["id"], other["id"]}, who
        assert fc.resources("DiagnosticReport").search(code=f"{csys}|").count() == 2, who
        for r in ordered:
            rl.validate(r.serialize(), f"{who}: a fhirpy search result")
        pat = fc.get("Patient", rec_patient.id)
        assert pat["id"] == rec_patient.id
        raw = fc.resources("DiagnosticReport").search(code=f"{csys}|").include("DiagnosticReport", "patient").fetch_raw()
        assert raw["resourceType"] == "Bundle" and raw["total"] == 2, who
        assert [e["resource"]["id"] for e in raw["entry"] if e["search"]["mode"] == "include"] == [rec_patient.id], who
