"""Records' FHIR REST interactions, black-box: metadata, create/read/vread/update/delete,
history, Prefer, conditional create (also under concurrency), concurrent updates with one
If-Match, decimals and unknown elements kept, and every error status (400, 401, 404, 405,
406, 410, 412, 413, 415, 422) as an OperationOutcome.

Oracle: every FHIR JSON answer goes through fhirkit (recordslib's response hook); the rest is
checked against the FHIR R4 HTTP spec and the records spec.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import identitylib as idl
import recordslib as rl
from recordslib import assert_bundle, assert_outcome, assert_resource, describe

THREADS = 16


def _tagged(text: str):
    """JSON with every number kept as its text, to compare decimals exactly."""
    return json.loads(text, parse_float=lambda s: ("decimal", s), parse_int=lambda s: ("integer", s))


def _ident(system: str, value: str) -> str:
    return urlencode({"identifier": f"{system}|{value}"})


# --------------------------------------------------------------------------- metadata


DR_PARAMS = {"patient", "subject", "code", "category", "status", "date", "issued", "performer", "identifier", "based-on"}
PATIENT_PARAMS = {"name", "family", "given", "identifier", "birthdate", "general-practitioner"}
PRACTITIONER_PARAMS = {"name", "identifier"}
COMMON_PARAMS = {"_id", "_lastUpdated"}


def test_metadata_is_a_capability_statement_without_a_token(records):
    r = records.request("GET", "/metadata")
    assert r.status_code == 200, describe(r)
    rl.assert_fhir_json(r)
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement", cs
    assert cs.get("kind") == "instance" and cs.get("fhirVersion") == "4.0.1", {k: cs.get(k) for k in ("kind", "fhirVersion")}
    assert {"json", "application/fhir+json"} & set(cs.get("format") or []), cs.get("format")
    assert "xml" not in " ".join(cs.get("format") or []), f"XML is not implemented: {cs.get('format')}"
    (rest,) = cs["rest"]
    assert rest["mode"] == "server", rest.get("mode")
    services = [c.get("code") for s in (rest.get("security") or {}).get("service") or [] for c in s.get("coding") or []]
    assert "SMART-on-FHIR" in services, f"rest.security.service: {rest.get('security')}"
    by_type = {res["type"]: res for res in rest["resource"]}
    # Provenance is derived (one per stored version): read and search only, by target or patient.
    # Subscription: the caller's own (test_subscriptions.py checks its entry).
    assert set(by_type) == set(rl.TYPES) | {"Provenance", "Subscription"}, sorted(by_type)
    provenance = by_type["Provenance"]
    assert {i["code"] for i in provenance.get("interaction") or []} == {"read", "search-type"}, provenance
    assert {p["name"] for p in provenance.get("searchParam") or []} == {"target", "patient"}, provenance
    expected = {"Patient": PATIENT_PARAMS, "Practitioner": PRACTITIONER_PARAMS, "DiagnosticReport": DR_PARAMS, "Binary": set()}
    for rtype, params in expected.items():
        res = by_type[rtype]
        inter = {i["code"] for i in res.get("interaction") or []}
        # Binary content is immutable (PUT answers 405), so Binary need not list update.
        required = {"read", "vread", "delete", "create", "history-instance", "history-type"}
        if rtype != "Binary":
            required.add("update")
        assert required <= inter, (rtype, inter)
        assert "patch" not in inter, (rtype, inter)
        if rtype != "Binary":
            assert "search-type" in inter, (rtype, inter)
        names = {p["name"] for p in res.get("searchParam") or []}
        assert names - COMMON_PARAMS == params, f"{rtype} searchParam {sorted(names)} != {sorted(params)}"
        assert [o["name"] for o in res.get("operation") or []] == ["verify"], (rtype, res.get("operation"))


def test_smart_configuration_is_identitys(records, identity):
    ours = records.request("GET", "/.well-known/smart-configuration", accept="application/json")
    assert ours.status_code == 200, describe(ours)
    theirs = identity.get("/.well-known/smart-configuration")
    assert theirs.status_code == 200, idl.describe(theirs)
    assert ours.json() == theirs.json()


def test_operational_endpoints_need_no_token(records):
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.yaml"):
        r = records.http.get(records.public + path, timeout=rl.HTTP_TIMEOUT)
        assert r.status_code == 200, describe(r)


# --------------------------------------------------------------------------- create, read, vread


def test_create_read_vread(records, rec_receptionist):
    tok = rec_receptionist.token
    sent = rl.patient_body(system=rl.new_system(), birth_date="1980-02-29", gender="male")
    sent_with_ids = {**sent, "id": "client-chosen-id", "meta": {"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z"}}
    before = rl.now_utc()
    r = records.create("Patient", sent_with_ids, tok)
    body = assert_resource(r, 201, "Patient", version=1, what="create")
    assert body["id"] != "client-chosen-id"
    assert r.headers.get("Location") == f"{records.base}/Patient/{body['id']}/_history/1", r.headers
    updated = rl.instant(body["meta"]["lastUpdated"])
    assert before - timedelta(seconds=60) <= updated <= rl.now_utc() + timedelta(seconds=60), updated
    assert rl.without_meta(body) == sent, "the stored Patient differs from what was sent"

    read = records.read("Patient", body["id"], tok)
    assert assert_resource(read, 200, "Patient", version=1) == body
    v1 = records.vread("Patient", body["id"], 1, tok)
    assert assert_resource(v1, 200, "Patient", version=1) == body
    assert_outcome(records.vread("Patient", body["id"], 2, tok), 404, what="vread of a version that does not exist")
    # application/json is accepted too; the answer stays FHIR JSON.
    as_json = records.read("Patient", body["id"], tok, accept="application/json")
    assert assert_resource(as_json, 200, "Patient") == body
    assert assert_resource(records.read("Patient", body["id"], tok, params={"_format": "json"}), 200, "Patient") == body


def test_create_accepts_application_json(records, rec_receptionist):
    sent = rl.patient_body(system=rl.new_system())
    r = records.request("POST", "/Patient", rec_receptionist.token, resource=sent, content_type="application/json",
                        accept="application/json")  # fmt: skip
    assert rl.without_meta(assert_resource(r, 201, "Patient", version=1)) == sent


def test_prefer_return(records, rec_receptionist):
    tok = rec_receptionist.token
    r = records.create("Patient", rl.patient_body(), tok, prefer="return=minimal")
    assert r.status_code == 201 and r.content == b"", describe(r)
    loc = r.headers.get("Location", "")
    m = re.fullmatch(re.escape(records.base) + r"/Patient/([0-9a-f-]{36})/_history/1", loc)
    assert m, f"Location {loc!r}"
    assert r.headers.get("ETag") == 'W/"1"' and r.headers.get("Last-Modified"), r.headers
    pid = m.group(1)
    body = records.must_read("Patient", pid, tok)

    rep = records.create("Patient", rl.patient_body(), tok, prefer="return=representation")
    assert_resource(rep, 201, "Patient", version=1)

    oo = records.create("Patient", rl.patient_body(), tok, prefer="return=OperationOutcome")
    assert oo.status_code == 201, describe(oo)
    rl.assert_fhir_json(oo)
    assert oo.json()["resourceType"] == "OperationOutcome" and oo.json()["issue"], oo.text
    assert all(i["severity"] == "information" for i in oo.json()["issue"]), oo.text
    assert re.search(r"/Patient/[0-9a-f-]{36}/_history/1$", oo.headers.get("Location", "")), oo.headers

    body["gender"] = "other"
    upd = records.update("Patient", pid, body, tok, prefer="return=minimal")
    assert upd.status_code == 200 and upd.content == b"", describe(upd)
    assert upd.headers.get("ETag") == 'W/"2"', upd.headers
    assert records.must_read("Patient", pid, tok)["gender"] == "other"


# --------------------------------------------------------------------------- update


def test_update_with_if_match_and_stale_versions(records, rec_receptionist):
    tok = rec_receptionist.token
    v1 = records.must_create("Patient", rl.patient_body(system=rl.new_system()), tok)
    pid = v1["id"]
    change = {**v1, "gender": "male", "birthDate": "1970-01-01"}
    r = records.update("Patient", pid, change, tok, if_match=1)
    v2 = assert_resource(r, 200, "Patient", version=2, what="update with a current If-Match")
    assert v2["gender"] == "male" and v2["birthDate"] == "1970-01-01"
    assert rl.instant(v2["meta"]["lastUpdated"]) >= rl.instant(v1["meta"]["lastUpdated"])
    # Stale: 412, nothing changes.
    stale = records.update("Patient", pid, {**v1, "gender": "unknown"}, tok, if_match=1)
    assert_outcome(stale, 412, what="update with a stale If-Match")
    assert_outcome(records.update("Patient", pid, {**v1, "gender": "unknown"}, tok, if_match='W/"7"'), 412)
    assert records.must_read("Patient", pid, tok)["gender"] == "male"
    # Without If-Match the update goes through; client meta is replaced.
    v3 = records.must_update("Patient", {**v2, "gender": "female", "meta": {"versionId": "1"}}, tok)
    assert v3["meta"]["versionId"] == "3" and v3["gender"] == "female"
    # Every version stays readable.
    for n, want in ((1, v1), (2, v2), (3, v3)):
        assert assert_resource(records.vread("Patient", pid, n, tok), 200, "Patient", version=n) == want


def test_update_errors(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    other = str(uuid.uuid4())
    assert_outcome(records.update("Patient", p["id"], {**p, "id": other}, tok), 400, what="body id differs from URL")
    no_id = {k: v for k, v in p.items() if k != "id"}
    assert_outcome(records.update("Patient", p["id"], no_id, tok), 400, what="body without id")
    # No update-as-create.
    assert_outcome(records.update("Patient", other, {**p, "id": other}, tok), 404, what="update of an unknown id")
    assert_outcome(records.read("Patient", other, tok), 404, what="read after a refused update-as-create")
    assert records.must_read("Patient", p["id"], tok)["meta"]["versionId"] == "1"


def test_concurrent_updates_with_one_if_match_have_one_winner(records, rec_receptionist):
    tok = rec_receptionist.token
    base = records.must_create("Patient", rl.patient_body(), tok)
    barrier = threading.Barrier(THREADS)

    def attempt(i: int):
        body = {**base, "name": [{"family": base["name"][0]["family"], "given": [f"Writer{i}"]}]}
        barrier.wait(timeout=30)
        return i, records.update("Patient", base["id"], body, tok, if_match=1)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(attempt, range(THREADS)))
    winners = [(i, r) for i, r in results if r.status_code == 200]
    assert len(winners) == 1, f"{len(winners)} updates with If-Match W/\"1\" succeeded: {[r.status_code for _, r in results]}"
    for _, r in results:
        if r.status_code != 200:
            assert_outcome(r, 412, what="a losing concurrent update")
    i, r = winners[0]
    assert_resource(r, 200, "Patient", version=2)
    now = records.must_read("Patient", base["id"], tok)
    assert now["meta"]["versionId"] == "2" and now["name"][0]["given"] == [f"Writer{i}"], now
    assert_outcome(records.vread("Patient", base["id"], 3, tok), 404, what="no third version")


def test_concurrent_updates_without_if_match_are_never_lost_as_unknown(records, rec_receptionist):
    """Without If-Match each update either lands as its own version or is refused as a version
    conflict (409/412); the resource exists, so 404 is never right."""
    tok = rec_receptionist.token
    n = 8
    base = records.must_create("Patient", rl.patient_body(), tok)
    barrier = threading.Barrier(n)

    def attempt(i: int):
        body = {**base, "name": [{"family": base["name"][0]["family"], "given": [f"Writer{i}"]}]}
        barrier.wait(timeout=30)
        return records.update("Patient", base["id"], body, tok)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(attempt, range(n)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 409, 412} and 200 in codes, f"statuses of {n} concurrent updates: {codes}"
    versions = sorted(rl.etag_version(r) for r in results if r.status_code == 200)
    assert versions == list(range(2, 2 + len(versions))), f"versions {versions}"
    hist = assert_bundle(records.history("Patient", base["id"], tok), "history")
    assert len(hist["entry"]) == 1 + len(versions)


# --------------------------------------------------------------------------- conditional create


def test_conditional_create_zero_one_many(records, rec_receptionist):
    tok = rec_receptionist.token
    system = rl.new_system()
    cond = _ident(system, "one")
    first = records.create("Patient", rl.patient_body(system=system, value="one"), tok, if_none_exist=cond)
    created = assert_resource(first, 201, "Patient", version=1, what="conditional create, no match")
    again = records.create("Patient", rl.patient_body(system=system, value="one", gender="male"), tok, if_none_exist=cond)
    existing = assert_resource(again, 200, "Patient", version=1, what="conditional create, one match")
    assert existing == created, "the existing resource, unchanged"
    assert records.search_ids("Patient", {"identifier": f"{system}|one"}, tok) == [created["id"]]
    # Two matches: 412, and nothing is created.
    for _ in range(2):
        records.must_create("Patient", rl.patient_body(system=system, value="two"), tok)
    many = records.create("Patient", rl.patient_body(system=system, value="two"), tok, if_none_exist=_ident(system, "two"))
    assert_outcome(many, 412, what="conditional create, two matches")
    assert len(records.search_ids("Patient", {"identifier": f"{system}|two"}, tok)) == 2


def test_concurrent_conditional_creates_make_one_resource(records, rec_receptionist):
    tok = rec_receptionist.token
    system = rl.new_system()
    cond = _ident(system, "race")
    barrier = threading.Barrier(THREADS)

    def attempt(_):
        barrier.wait(timeout=30)
        return records.create("Patient", rl.patient_body(system=system, value="race"), tok, if_none_exist=cond)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(attempt, range(THREADS)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1 and codes.count(200) == THREADS - 1, f"statuses: {codes}"
    bodies = [assert_resource(r, r.status_code, "Patient", version=1) for r in results]
    assert len({b["id"] for b in bodies}) == 1, f"ids: {sorted({b['id'] for b in bodies})}"
    found = records.must_search("Patient", {"identifier": f"{system}|race"}, tok)
    assert found.get("total") == 1 and rl.ids(found) == [bodies[0]["id"]], found


# --------------------------------------------------------------------------- delete and history


def test_delete_is_logical_and_keeps_history(records, rec_receptionist):
    tok = rec_receptionist.token
    system = rl.new_system()
    v1 = records.must_create("Patient", rl.patient_body(system=system, value="del"), tok)
    pid = v1["id"]
    v2 = records.must_update("Patient", {**v1, "gender": "male"}, tok)
    r = records.delete("Patient", pid, tok)
    assert r.status_code == 204 and r.content == b"", describe(r)
    assert_outcome(records.read("Patient", pid, tok), 410, what="read of a deleted resource")
    assert_outcome(records.vread("Patient", pid, 3, tok), 410, what="vread of the deletion")
    assert assert_resource(records.vread("Patient", pid, 1, tok), 200, "Patient", version=1) == v1
    assert assert_resource(records.vread("Patient", pid, 2, tok), 200, "Patient", version=2) == v2
    # Deleted resources never match; deleting again is fine; updating is not.
    assert records.must_search("Patient", {"identifier": f"{system}|del"}, tok).get("total") == 0
    again = records.delete("Patient", pid, tok)
    assert again.status_code == 204, describe(again)
    assert_outcome(records.update("Patient", pid, v2, tok), 410, what="update of a deleted resource")

    hist = assert_bundle(records.history("Patient", pid, tok), "history")
    es = hist.get("entry") or []
    assert len(es) == 3, f"history of create, update, delete: {len(es)} entries"
    deleted, second, first = es
    assert "resource" not in deleted or (deleted.get("request") or {}).get("method") == "DELETE", deleted
    if "request" in deleted:
        assert deleted["request"]["method"] == "DELETE", deleted
    assert second["resource"] == v2 and first["resource"] == v1


def test_delete_honours_if_match(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    assert_outcome(records.delete("Patient", p["id"], tok, if_match=5), 412, what="delete with a stale If-Match")
    assert records.must_read("Patient", p["id"], tok) == p
    r = records.delete("Patient", p["id"], tok, if_match=1)
    assert r.status_code == 204, describe(r)
    assert_outcome(records.read("Patient", p["id"], tok), 410)


def test_instance_and_type_history(records, rec_receptionist):
    tok = rec_receptionist.token
    a1 = records.must_create("Patient", rl.patient_body(), tok)
    a2 = records.must_update("Patient", {**a1, "gender": "male"}, tok)
    a3 = records.must_update("Patient", {**a2, "gender": "other"}, tok)
    b1 = records.must_create("Patient", rl.patient_body(), tok)

    hist = assert_bundle(records.history("Patient", a1["id"], tok), "history")
    assert [e["resource"] for e in hist["entry"]] == [a3, a2, a1], "instance history, newest first"
    for e in hist["entry"]:
        assert e["fullUrl"] == f"{records.base}/Patient/{a1['id']}", e["fullUrl"]
    two = assert_bundle(records.history("Patient", a1["id"], tok, {"_count": 2}), "history")
    assert [e["resource"]["meta"]["versionId"] for e in two["entry"]] == ["3", "2"]
    since = assert_bundle(records.history("Patient", a1["id"], tok, {"_since": a2["meta"]["lastUpdated"]}), "history")
    assert {e["resource"]["meta"]["versionId"] for e in since["entry"]} >= {"2", "3"}
    assert "1" not in {e["resource"]["meta"]["versionId"] for e in since["entry"]} or (
        a1["meta"]["lastUpdated"] == a2["meta"]["lastUpdated"]
    )

    typed = assert_bundle(records.history("Patient", None, tok, {"_since": a1["meta"]["lastUpdated"], "_count": 1000}), "history")
    ours = [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in typed.get("entry") or []
            if "resource" in e and e["resource"]["id"] in (a1["id"], b1["id"])]  # fmt: skip
    assert ours == [(b1["id"], "1"), (a1["id"], "3"), (a1["id"], "2"), (a1["id"], "1")], ours
    stamps = [rl.instant(e["resource"]["meta"]["lastUpdated"]) for e in typed.get("entry") or [] if "resource" in e]
    assert stamps == sorted(stamps, reverse=True), "type history is newest first"
    assert all(s >= rl.instant(a1["meta"]["lastUpdated"]) for s in stamps), "_since"
    one = assert_bundle(records.history("Patient", None, tok, {"_count": 1}), "history")
    assert len(one.get("entry") or []) == 1


def test_report_lifecycle_by_a_doctor(records, rec_doctor, rec_patient, ehr_writer):
    tok = rec_doctor.token
    sent = rl.report_body(rec_patient.fhir_user, status="preliminary", system=rl.new_system(), effective="2024-03-01T12:00:00Z",
                          issued="2024-03-01T13:00:00.000Z", performer=[rec_doctor.fhir_user], conclusion="No abnormality.")  # fmt: skip
    v1 = records.must_create("DiagnosticReport", sent, tok)
    assert rl.without_meta(v1) == sent
    final = records.must_update("DiagnosticReport", {**v1, "status": "final"}, tok, if_match=1)
    assert final["status"] == "final" and final["meta"]["versionId"] == "2"
    interpreters = [r.get("reference") for r in final.get("resultsInterpreter") or []]
    assert rec_doctor.fhir_user in interpreters, f"approval stamps resultsInterpreter: {final.get('resultsInterpreter')}"
    amended = records.must_update("DiagnosticReport", {**final, "status": "amended", "conclusion": "Amended."}, tok)
    assert amended["meta"]["versionId"] == "3"
    # Doctors may not delete; a trusted EHR with the d scope may. History stays.
    assert_outcome(records.delete("DiagnosticReport", v1["id"], tok), 403, what="doctor deleting a report")
    r = records.delete("DiagnosticReport", v1["id"], ehr_writer.token)
    assert r.status_code == 204, describe(r)
    assert_outcome(records.read("DiagnosticReport", v1["id"], tok), 410)
    hist = assert_bundle(records.history("DiagnosticReport", v1["id"], tok), "history")
    assert len(hist["entry"]) == 4 and hist["entry"][-1]["resource"] == v1


# --------------------------------------------------------------------------- content kept exactly


def test_decimals_and_unknown_elements_are_kept(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    body = rl.report_body(rec_patient.fhir_user, system=rl.new_system())
    text = json.dumps(body)[:-1] + (
        ', "extension": [{"url": "http://e2e.example/decimal", "valueDecimal": 1.50},'
        ' {"url": "http://e2e.example/long", "valueDecimal": 3.14159265358979323846264338327950288},'
        ' {"url": "http://e2e.example/zeros", "valueDecimal": 100.000}],'
        ' "e2eUnknownBlob": {"nested": [1, "x", 2.50, {"deep": true, "empty": [0]}], "n": -0.0},'
        ' "e2eUnknownText": "kept \\u00e9 \\ud83d\\ude00"}'
    )
    sent = _tagged(text)
    r = records.create("DiagnosticReport", text, tok)
    created = assert_resource(r, 201, "DiagnosticReport", version=1)
    for name, resp in (("create", r), ("read", records.read("DiagnosticReport", created["id"], tok)),
                       ("vread", records.vread("DiagnosticReport", created["id"], 1, tok))):  # fmt: skip
        assert resp.status_code == 200 or name == "create", describe(resp)
        raw = resp.text
        assert re.search(r'"valueDecimal"\s*:\s*1\.50\s*[},]', raw), f"{name}: 1.50 lost its text: {raw[:600]}"
        assert "3.14159265358979323846264338327950288" in raw, f"{name}: long decimal changed"
        assert re.search(r'"valueDecimal"\s*:\s*100\.000\s*[},]', raw), f"{name}: 100.000 changed"
        got = _tagged(raw)
        assert rl.without_meta(got) == sent, f"{name}: the stored report differs from what was sent"


def test_unknown_elements_in_a_patient_survive_an_update(records, rec_receptionist):
    tok = rec_receptionist.token
    sent = {**rl.patient_body(), "e2eUnknownFlag": {"a": [1.10, "b"]}}
    v1 = records.must_create("Patient", sent, tok)
    assert v1["e2eUnknownFlag"] == {"a": [1.1, "b"]}
    text = json.dumps({**v1, "gender": "male", "e2eUnknownFlag": {"a": ["@DEC@", "b"]}}).replace('"@DEC@"', "1.10")
    v2 = records.update("Patient", v1["id"], text, tok)
    assert v2.status_code == 200 and re.search(r'"a"\s*:\s*\[\s*1\.10\s*,', v2.text), describe(v2)


# --------------------------------------------------------------------------- validation (422)


def _report_cases(subject: str) -> dict[str, tuple[dict, str | None]]:
    good = rl.report_body(subject)
    return {
        "missing status": ({k: v for k, v in good.items() if k != "status"}, "DiagnosticReport.status"),
        "unknown status": ({**good, "status": "done"}, "DiagnosticReport.status"),
        "status not a string": ({**good, "status": 5}, "DiagnosticReport.status"),
        "missing code": ({k: v for k, v in good.items() if k != "code"}, "DiagnosticReport.code"),
        "bad effectiveDateTime": ({**good, "effectiveDateTime": "2024-13-45"}, "DiagnosticReport.effectiveDateTime"),
        "effectiveDateTime with time, no zone": ({**good, "effectiveDateTime": "2024-05-01T10:00:00"},
                                                 "DiagnosticReport.effectiveDateTime"),
        "issued not an instant": ({**good, "issued": "2024-05-01"}, "DiagnosticReport.issued"),
        "subject not found": ({**good, "subject": rl.ref("Patient", str(uuid.uuid4()))}, "DiagnosticReport.subject"),
        "subject of another type": ({**good, "subject": {"reference": "Group/x"}}, "DiagnosticReport.subject"),
        "malformed subject reference": ({**good, "subject": {"reference": "Patient/"}}, "DiagnosticReport.subject"),
        "resourceType mismatch": ({**rl.patient_body(), "resourceType": "Patient"}, None),
    }


def test_invalid_reports_are_422_with_expression(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    failures = []
    for name, (body, expression) in _report_cases(rec_patient.fhir_user).items():
        r = records.create("DiagnosticReport", body, tok)
        try:
            assert_outcome(r, 422, expression=expression, what=name)
            if expression is None:
                assert all(i.get("expression") for i in r.json()["issue"] if i["severity"] == "error"), r.text
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, "\n".join(failures)


def test_invalid_patients_are_422_with_expression(records, rec_receptionist):
    tok = rec_receptionist.token
    system = rl.new_system()
    good = rl.patient_body(system=system, value="bad")
    cases = {
        "unknown gender": ({**good, "gender": "robot"}, "Patient.gender"),
        "month 13": ({**good, "birthDate": "1990-13-01"}, "Patient.birthDate"),
        "not a FHIR date": ({**good, "birthDate": "01/02/1990"}, "Patient.birthDate"),
        "name not a list": ({**good, "name": {"family": "X"}}, "Patient.name"),
        "identifier not a list": ({**good, "identifier": {"value": "x"}}, "Patient.identifier"),
        "generalPractitioner not found": ({**good, "generalPractitioner": [rl.ref("Practitioner", str(uuid.uuid4()))]},
                                          "Patient.generalPractitioner"),
        "generalPractitioner not a Practitioner": ({**good, "generalPractitioner": [{"reference": "Organization/x"}]},
                                                   "Patient.generalPractitioner"),
        "resourceType mismatch": ({**rl.practitioner_body(), "identifier": good["identifier"]}, None),
    }
    failures = []
    for name, (body, expression) in cases.items():
        try:
            assert_outcome(records.create("Patient", body, tok), 422, expression=expression, what=name)
        except AssertionError as e:
            failures.append(str(e).split("\n")[0])
    assert not failures, "\n".join(failures)
    assert records.must_search("Patient", {"identifier": f"{system}|bad"}, tok).get("total") == 0, "nothing was stored"


def test_update_is_validated_too(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    assert_outcome(records.update("Patient", p["id"], {**p, "gender": "robot"}, tok), 422, expression="Patient.gender")
    assert_outcome(records.update("Patient", p["id"], {**p, "resourceType": "Practitioner"}, tok), {400, 422})
    assert records.must_read("Patient", p["id"], tok)["meta"]["versionId"] == "1"


# --------------------------------------------------------------------------- protocol errors


def test_malformed_bodies_are_400(records, rec_receptionist):
    tok = rec_receptionist.token
    for name, data in {
        "malformed JSON": b'{"resourceType": "Patient", ',
        "not JSON": b"hello",
        "a JSON array": b"[]",
        "a JSON string": b'"Patient"',
        "empty body": b"",
    }.items():
        assert_outcome(records.create("Patient", data, tok), 400, what=name)
    assert_outcome(records.create("Patient", b'{"name": []}', tok), {400, 422}, what="no resourceType")


def test_unknown_ids_and_types_are_404(records, rec_receptionist):
    tok = rec_receptionist.token
    unknown = str(uuid.uuid4())
    for name, r in {
        "read": records.read("Patient", unknown, tok),
        "vread": records.vread("Patient", unknown, 1, tok),
        "history": records.history("Patient", unknown, tok),
        "not a UUID": records.read("Patient", "no-such-id", tok),
    }.items():
        assert_outcome(r, 404, what=name)
    for name, r in {
        "read of an unknown type": records.read("Observation", unknown, tok),
        "search of an unknown type": records.search("Observation", {}, tok),
        "create of an unknown type": records.create("Observation", {"resourceType": "Observation"}, tok),
        "lower-case type": records.read("patient", unknown, tok),
    }.items():
        assert_outcome(r, 404, code="not-found", what=name)


def test_methods_not_allowed_are_405(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    for method, path in (("PATCH", f"/Patient/{p['id']}"), ("DELETE", "/Patient"), ("PUT", "/Patient"),
                         ("POST", f"/Patient/{p['id']}"), ("POST", "/metadata"), ("DELETE", f"/Patient/{p['id']}/_history/1")):  # fmt: skip
        r = records.request(method, path, tok, data=b"{}" if method != "DELETE" else None)
        assert_outcome(r, 405, what=f"{method} {path}")
    assert records.must_read("Patient", p["id"], tok) == p


def test_xml_is_406(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    assert_outcome(records.read("Patient", p["id"], tok, accept="application/fhir+xml"), 406, what="Accept fhir+xml")
    assert_outcome(records.read("Patient", p["id"], tok, params={"_format": "xml"}), 406, what="_format=xml")
    assert_outcome(records.search("Patient", {"_id": p["id"]}, tok, headers={"Accept": "application/xml"}), 406)


def test_wrong_content_type_is_415(records, rec_receptionist):
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    body = json.dumps(rl.patient_body()).encode()
    for ct in ("text/plain", "application/fhir+xml", "application/x-www-form-urlencoded"):
        assert_outcome(records.request("POST", "/Patient", tok, data=body, content_type=ct), 415, what=f"create as {ct}")
        r = records.request("PUT", f"/Patient/{p['id']}", tok, data=json.dumps(p).encode(), content_type=ct)
        assert_outcome(r, 415, what=f"update as {ct}")
    assert records.must_read("Patient", p["id"], tok)["meta"]["versionId"] == "1"


def test_too_large_resource_is_413(records, rec_receptionist):
    tok = rec_receptionist.token
    system = rl.new_system()
    body = rl.patient_body(system=system, value="big")
    body["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * (1024 * 1024 + 100) + "</div>"}
    assert_outcome(records.create("Patient", body, tok), 413, what="a 1 MiB Patient")
    assert records.must_search("Patient", {"identifier": f"{system}|big"}, tok).get("total") == 0
    # Just under the limit is fine.
    body["text"]["div"] = '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * (1024 * 1024 - 4096) + "</div>"
    assert len(json.dumps(body)) < 1024 * 1024
    records.must_create("Patient", body, tok)


def test_no_or_bad_token_is_401(records, rec_receptionist):
    p = records.must_create("Patient", rl.patient_body(), rec_receptionist.token)
    bad = idl.tamper_signature(rec_receptionist.token)
    for token in (None, bad, "not-a-jwt"):
        for name, r in {
            "read": records.read("Patient", p["id"], token),
            "search": records.search("Patient", {"_id": p["id"]}, token),
            "create": records.create("Patient", rl.patient_body(), token),
            "update": records.update("Patient", p["id"], p, token),
            "delete": records.delete("Patient", p["id"], token),
            "history": records.history("Patient", p["id"], token),
        }.items():
            assert_outcome(r, 401, code="login", what=f"{name} with token {str(token)[:12]!r}")
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
    assert records.must_read("Patient", p["id"], rec_receptionist.token) == p
