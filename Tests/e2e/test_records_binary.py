"""Records' Binary resources, black-box: raw uploads (Content-Type + X-Security-Context) and
FHIR JSON uploads, downloads as the raw bytes (byte-identical, stored Content-Type) or as
Binary JSON with base64 data, validation, the size limit (413), a 5 MB round trip, and a
DiagnosticReport's presentedForm pointing at a Binary: records fills contentType, size and
hash (base64 of the SHA-1 of the content, as R4 Attachment.hash defines) and refuses a
client hash or size that disagrees.

Oracle: hashlib for SHA-1, fhirkit for every JSON answer (recordslib's response hook).
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import recordslib as rl
import requests
from recordslib import assert_outcome, assert_resource, describe

BINARY_MAX_BYTES = 26214400  # the stack runs records with the default (25 MiB)


def _raw_upload(records, token: str, content: bytes, content_type: str, patient: str | None, **kw) -> requests.Response:
    headers = {"Content-Type": content_type}
    if patient is not None:
        headers["X-Security-Context"] = patient
    return records.create("Binary", content, token, headers=headers, **kw)


def _created_id(records, r: requests.Response) -> str:
    assert r.status_code == 201, describe(r)
    loc = r.headers.get("Location", "")
    prefix = f"{records.base}/Binary/"
    assert loc.startswith(prefix) and loc.endswith("/_history/1"), f"Location {loc!r}"
    rid = loc[len(prefix) : -len("/_history/1")]
    assert rl.UUID_RE.match(rid), rid
    assert r.headers.get("ETag") == 'W/"1"', r.headers
    if r.content:
        body = r.json()
        assert body["resourceType"] == "Binary" and body["id"] == rid, body.get("id")
    return rid


def _download(records, token: str, rid: str, accept: str = "*/*") -> requests.Response:
    return records.read("Binary", rid, token, accept=accept)


def _as_json(records, token: str, rid: str, **kw) -> dict:
    r = records.read("Binary", rid, token, **kw)
    body = assert_resource(r, 200, "Binary", what="Binary as JSON")
    return body


def test_raw_upload_downloads_byte_identical(records, rec_doctor, rec_patient, ehr_trusted):
    tok = rec_doctor.token
    content = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"
    r = _raw_upload(records, tok, content, "application/pdf", rec_patient.fhir_user)
    rid = _created_id(records, r)
    for accept in ("*/*", "application/pdf", "application/octet-stream, */*;q=0.1"):
        d = _download(records, tok, rid, accept)
        assert d.status_code == 200, describe(d)
        assert d.headers.get("Content-Type", "").split(";")[0] == "application/pdf", d.headers
        assert d.content == content, f"Accept {accept}: the download differs from the upload"
    as_json = _as_json(records, tok, rid)
    assert as_json["contentType"] == "application/pdf"
    assert as_json["securityContext"]["reference"] == rec_patient.fhir_user
    assert base64.b64decode(as_json["data"], validate=True) == content
    for kw in ({"accept": "application/json"}, {"params": {"_format": "json"}, "accept": "*/*"}):
        assert _as_json(records, tok, rid, **kw) == as_json, kw
    # A trusted EHR reads the same bytes.
    assert _download(records, ehr_trusted.token, rid).content == content


def test_text_upload_keeps_its_content_type(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    content = "Befund: unauffällig ✓\n".encode()
    rid = _created_id(records, _raw_upload(records, tok, content, "text/plain; charset=utf-8", rec_patient.fhir_user))
    d = _download(records, tok, rid)
    assert d.status_code == 200 and d.content == content, describe(d)
    assert d.headers.get("Content-Type", "").lower().replace(" ", "").startswith("text/plain"), d.headers
    body = _as_json(records, tok, rid)
    assert body["contentType"].lower().replace(" ", "") in ("text/plain;charset=utf-8", "text/plain"), body["contentType"]


def test_fhir_json_upload(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    content = bytes(range(256)) * 40
    sent = {**rl.binary_json(rec_patient.fhir_user, content, "image/png"), "id": "client-id", "meta": {"versionId": "9"}}
    r = records.create("Binary", sent, tok)
    created = assert_resource(r, 201, "Binary", version=1)
    assert created["id"] != "client-id"
    d = _download(records, tok, created["id"])
    assert d.status_code == 200 and d.content == content, describe(d)
    assert d.headers.get("Content-Type", "").split(";")[0] == "image/png"
    body = _as_json(records, tok, created["id"])
    assert base64.b64decode(body["data"]) == content and body["contentType"] == "image/png"
    assert body["securityContext"] == {"reference": rec_patient.fhir_user}


def test_binary_validation(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    good = rl.binary_json(rec_patient.fhir_user, b"x")
    unknown = f"Patient/{uuid.uuid4()}"
    failures = []
    for name, body, want, expression in (
        ("no contentType", {k: v for k, v in good.items() if k != "contentType"}, 422, "Binary.contentType"),
        ("no securityContext", {k: v for k, v in good.items() if k != "securityContext"}, 422, "Binary.securityContext"),
        ("unknown patient", {**good, "securityContext": {"reference": unknown}}, 422, "Binary.securityContext"),
        ("securityContext not a Patient", {**good, "securityContext": {"reference": "Group/x"}}, 422, "Binary.securityContext"),
        ("data not base64", {**good, "data": "!!not base64!!"}, 422, "Binary.data"),
    ):
        try:
            assert_outcome(records.create("Binary", body, tok), want, expression=expression, what=name)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    for name, r, want in (
        ("raw without X-Security-Context", _raw_upload(records, tok, b"x", "application/pdf", None), {400, 422}),
        ("raw for an unknown patient", _raw_upload(records, tok, b"x", "application/pdf", unknown), {422}),
        ("raw with a malformed X-Security-Context", _raw_upload(records, tok, b"x", "application/pdf", "nonsense"), {400, 422}),
    ):
        try:
            assert_outcome(r, want, what=name)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, "\n".join(failures)


def test_technologist_uploads_for_any_patient_and_reports_on_it(records, rec_technologist, rec_receptionist):
    """Technologists upload files for any registered patient (no generalPractitioner needed)
    and attach them to their preliminary reports."""
    tok = rec_technologist.token
    patient = records.must_create("Patient", rl.patient_body(), rec_receptionist.token)
    pref = f"Patient/{patient['id']}"
    content = b"%PDF-1.4 technologist upload " + uuid.uuid4().bytes
    rid = _created_id(records, _raw_upload(records, tok, content, "application/pdf", pref))
    assert _download(records, tok, rid).content == content
    jid = records.must_create("Binary", rl.binary_json(pref, b"json upload"), tok)["id"]
    assert base64.b64decode(_as_json(records, tok, jid)["data"]) == b"json upload"
    report = records.must_create("DiagnosticReport", rl.report_body(pref, presented=[{"url": f"Binary/{rid}"}]), tok)
    assert report["presentedForm"][0]["hash"] == rl.sha1_b64(content)


def test_five_megabyte_round_trip_and_hash(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    content = os.urandom(5 * 1024 * 1024)
    rid = _created_id(records, _raw_upload(records, tok, content, "application/dicom", rec_patient.fhir_user))
    d = _download(records, tok, rid)
    assert d.status_code == 200, describe(d)
    assert len(d.content) == len(content) and hashlib.sha256(d.content).digest() == hashlib.sha256(content).digest()
    assert base64.b64decode(_as_json(records, tok, rid)["data"]) == content
    report = records.must_create("DiagnosticReport", rl.report_body(rec_patient.fhir_user, status="final",
                                                                   presented=[{"url": f"Binary/{rid}"}]), tok)  # fmt: skip
    (att,) = report["presentedForm"]
    assert att == {"url": f"Binary/{rid}", "contentType": "application/dicom", "size": len(content), "hash": rl.sha1_b64(content)}, att


def test_presented_form_gets_hash_and_size(records, rec_doctor, rec_receptionist, rec_patient):
    tok = rec_doctor.token
    content = b"%PDF-1.4 e2e report " + uuid.uuid4().bytes
    rid = _created_id(records, _raw_upload(records, tok, content, "application/pdf", rec_patient.fhir_user))
    digest = rl.sha1_b64(content)
    assert digest == base64.b64encode(hashlib.sha1(content).digest()).decode()

    r = records.create("DiagnosticReport", rl.report_body(rec_patient.fhir_user, presented=[{"url": f"Binary/{rid}", "title": "Report"}]), tok)
    report = assert_resource(r, 201, "DiagnosticReport")
    assert report["presentedForm"] == [{"url": f"Binary/{rid}", "title": "Report", "contentType": "application/pdf",
                                        "size": len(content), "hash": digest}], report["presentedForm"]  # fmt: skip
    # A client that sends the right values is fine.
    right = [{"url": f"Binary/{rid}", "contentType": "application/pdf", "size": len(content), "hash": digest}]
    ok = records.must_create("DiagnosticReport", rl.report_body(rec_patient.fhir_user, presented=right), tok)
    assert ok["presentedForm"] == right
    # Wrong ones are refused.
    wrong_hash = rl.sha1_b64(content + b"x")
    other_patient = records.must_create("Patient", rl.patient_body(gp=rec_doctor.fhir_user), rec_receptionist.token)
    other_bin = _created_id(records, _raw_upload(records, tok, b"other", "application/pdf", f"Patient/{other_patient['id']}"))
    failures = []
    for name, form in (
        ("wrong hash", [{"url": f"Binary/{rid}", "hash": wrong_hash}]),
        ("hash as hex", [{"url": f"Binary/{rid}", "hash": base64.b64encode(hashlib.sha1(content).hexdigest().encode()).decode()}]),
        ("SHA-256 instead of SHA-1", [{"url": f"Binary/{rid}", "hash": base64.b64encode(hashlib.sha256(content).digest()).decode()}]),
        ("wrong size", [{"url": f"Binary/{rid}", "size": len(content) + 1}]),
        ("another patient's Binary", [{"url": f"Binary/{other_bin}"}]),
        ("unknown Binary", [{"url": f"Binary/{uuid.uuid4()}"}]),
    ):
        r = records.create("DiagnosticReport", rl.report_body(rec_patient.fhir_user, presented=form), tok)
        try:
            assert_outcome(r, 422, expression="DiagnosticReport.presentedForm", what=name)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    # The same holds on update.
    upd = {**report, "presentedForm": [{"url": f"Binary/{rid}", "hash": wrong_hash}]}
    try:
        assert_outcome(records.update("DiagnosticReport", report["id"], upd, tok), 422, what="update with a wrong hash")
    except AssertionError as e:
        failures.append(str(e).splitlines()[0])
    assert not failures, "\n".join(failures)
    # An update that drops hash/size gets them filled in again.
    again = records.must_update("DiagnosticReport", {**report, "presentedForm": [{"url": f"Binary/{rid}"}]}, tok)
    assert again["presentedForm"][0]["hash"] == digest and again["presentedForm"][0]["size"] == len(content)


def _post_or_reset(fn) -> requests.Response | None:
    try:
        return fn()
    except requests.ConnectionError:
        return None


def test_size_limit_is_413(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    over = b"\0" * (BINARY_MAX_BYTES + 1)
    r = _post_or_reset(lambda: _raw_upload(records, tok, over, "application/octet-stream", rec_patient.fhir_user))
    assert r is not None, "the connection was closed instead of answering 413 to a raw upload over BINARY_MAX_BYTES"
    assert_outcome(r, 413, what="raw upload of BINARY_MAX_BYTES + 1")
    # As FHIR JSON: the base64 text fits the JSON body limit, the content does not.
    data = base64.b64encode(over).decode()
    body = ('{"resourceType": "Binary", "contentType": "application/octet-stream", "securityContext": {"reference": "'
            + rec_patient.fhir_user + '"}, "data": "' + data + '"}')  # fmt: skip
    r = _post_or_reset(lambda: records.create("Binary", body, tok))
    assert r is not None, "the connection was closed instead of answering 413 to a JSON Binary over BINARY_MAX_BYTES"
    assert_outcome(r, 413, what="JSON Binary of BINARY_MAX_BYTES + 1")


def test_binary_json_in_xml_is_406(records, rec_doctor, rec_patient):
    tok = rec_doctor.token
    rid = _created_id(records, _raw_upload(records, tok, b"abc", "application/pdf", rec_patient.fhir_user))
    assert_outcome(records.read("Binary", rid, tok, params={"_format": "xml"}), 406, what="_format=xml")
