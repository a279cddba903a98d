"""The seeds' whole scenario end to end (issue 8): `deploy/local/demo` run against the stack, and
the same story as assertions driven by an independent FHIR client.

The admin creates two doctors, a technologist and a receptionist; the receptionist registers a
patient assigned to the first doctor; the technologist uploads the patient's reports with a PDF
and an image; the doctor approves some of them; the patient logs in, sees exactly the approved
ones, verifies one offline (and a tampered copy fails), grants the second doctor access, who can
read only while the grant is active; the patient's audit view lists both doctors' reads, and the
admin's login-time query lists the patient's logins.

Oracles: fhirpy drives every FHIR interaction at records, consent and audit, and fhirkit checks
every FHIR answer (recordslib.fhirpy_client); carebundle supplies the Patients, Practitioners and
DiagnosticReports (several seeds); the `medledger` CLI verifies offline against LEDGER_VKEY alone.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import anchorlib as al
import auditlib as aud
import carebundle
import consentlib as cl
import identitylib as idl
import pytest
import recordslib as rl
from e2e_support import repo_root, run_cli
from fhirpy.base.exceptions import ResourceNotFound
from fhirpy.base.searchset import Raw

# The step headings `deploy/local/demo` prints, in order.
DEMO_STEPS = (
    "the admin (admin) logs in",
    "the admin creates the staff",
    "the receptionist logs in and registers the patient",
    "the patient logs in for the first time and chooses her own password",
    "the technologist logs in and uploads a report with a PDF and an image",
    "the patient logs in with her new password: a preliminary report is not hers to see yet",
    "the doctor (Dr House) logs in, reads the report and approves it",
    "the patient reads her approved report and downloads its files",
    "the patient verifies her report offline",
    "the patient grants Dr Cuddy access",
    "the second doctor (Dr Cuddy) reads the report while the grant is active",
    "the patient revokes the grant; Dr Cuddy is refused again",
    "the patient reads who accessed her report (audit)",
    "the admin reads Jane's login times (audit)",
)
DEMO_TIMEOUT = 180
PDF = b"%PDF-1.4\n% MedLedger e2e demo scenario\n%%EOF\n"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
LOGIN = "110122"


def _demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    script = repo_root() / "deploy/local/demo"
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT, check=False)


def test_demo_script_walks_every_step(stack):
    p = _demo({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STACK_ENV": str(Path(os.environ["STACK_ENV"]).resolve())})
    assert p.returncode == 0, f"deploy/local/demo failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}"
    out = p.stdout
    at = 0
    for n, heading in enumerate(DEMO_STEPS, 1):
        found = out.find(f"\n{n:2}. {heading}", at)
        assert found >= 0, f"step {n} ({heading}) missing or out of order:\n{out}"
        at = found
    assert f"\n{len(DEMO_STEPS) + 1:2}. " not in out, "more steps than expected"
    assert out.count("verified: ") == 2 and "verified: DiagnosticReport/" in out and "verified: Binary/" in out, out
    assert out.count("verify failed: ") == 1, "the changed copy must fail: " + out
    for who in ("Dr Gregory House", "Dr Lisa Cuddy"):
        assert f"{who}" in out.split("\n13. ")[1], f"the patient's audit view lacks {who}: {out}"
    assert "login from " in out.split("\n14. ")[1]
    assert out.rstrip().endswith("every step succeeded (run " + out.split("(run ", 1)[1].split(")", 1)[0] + ").")
    assert p.stderr == "", p.stderr


def test_demo_script_fails_clearly(stack, tmp_path):
    path = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    p = _demo({**path, "STACK_ENV": str(tmp_path / "missing.env")})
    assert p.returncode == 1 and "does not exist: start the stack first" in p.stderr, (p.stdout, p.stderr)

    unreachable = Path(os.environ["STACK_ENV"]).read_text().replace(stack["IDENTITY_URL"], "http://127.0.0.1:9")
    (tmp_path / "stack.env").write_text(unreachable)
    p = _demo({**path, "STACK_DIR": str(tmp_path)})
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.strip().startswith("demo failed at step 1 (the admin (admin) logs in): POST http://127.0.0.1:9/auth/login"), p.stderr
    assert "cannot reach the service" in p.stderr, p.stderr


# --------------------------------------------------------------------------- the same story, asserted


def _fhirpy_reads(fc, rtype: str, rid: str) -> bool:
    """Whether fhirpy reads the resource (a 404 is ResourceNotFound)."""
    try:
        fc.get(rtype, rid)
    except ResourceNotFound:
        return False
    return True


def _report_ids(fc, patient: str) -> set[str]:
    return {r["id"] for r in fc.resources("DiagnosticReport").search(patient=patient).limit(100).fetch_all()}


def _agents(event: dict) -> set[str]:
    return {a["who"]["reference"] for a in event.get("agent", []) if a.get("requestor") and "reference" in a.get("who", {})}


@pytest.mark.parametrize("seed", [11, 2024, 90210])
def test_scenario_with_carebundle_data_through_fhirpy(seed, stack, records, identity, admin, users, actors, medledger, tmp_path):
    parts = rl.carebundle_parts(json.loads(carebundle.to_json(carebundle.generate_cohort(count=1, seed=seed, include_vitals=False)[0])))
    (_, cb_doctor), = parts["Practitioner"]
    (_, cb_patient), = parts["Patient"]
    cb_reports = [r for _, r in parts["DiagnosticReport"]]
    assert len(cb_reports) >= 2, f"seed {seed}: carebundle made {len(cb_reports)} reports"
    fhir = lambda token, base=records.base: rl.fhirpy_client(base, token)  # noqa: E731

    # The admin creates the staff: each Practitioner in records first, then the account naming it.
    as_admin = fhir(admin.token)
    staff = {}
    for key, role, body in (("doctor", "doctor", rl.without_meta(cb_doctor)), ("second", "doctor", rl.practitioner_body()),
                            ("tech", "technologist", rl.practitioner_body(given="Tech"))):  # fmt: skip
        prac = as_admin.resource("Practitioner", **body).save().serialize()
        rl.validate(prac, "the Practitioner fhirpy got back")
        staff[key] = actors.linked(users.staff(role, label=key, fhirUser=f"Practitioner/{prac['id']}"), prac)
    doctor, second, tech = staff["doctor"], staff["second"], staff["tech"]
    desk = actors.receptionist(fresh=True)

    # The receptionist registers the patient, assigned to the doctor, and her account.
    registered = rl.without_meta(cb_patient) | {"generalPractitioner": [{"reference": doctor.fhir_user}]}
    pat = fhir(desk.token).resource("Patient", **registered).save().serialize()
    assert rl.without_meta(pat) == registered, "the Patient round trip"
    account = users.patient(activate=False, creator=desk.token, fhirUser=f"Patient/{pat['id']}")
    first = identity.login_tokens(account.username, account.password)
    assert first.scopes == {idl.PASSWORD_CHANGE_SCOPE}, "a one-time password is good for changing it only"
    new_password = idl.strong_password()
    assert identity.change_password(first.access_token, account.password, new_password).status_code == 204
    account.password = new_password
    login = identity.login_tokens(account.username, account.password)
    assert login.scopes == set(idl.ROLE_SCOPES["patient"]), login.scope
    patient = actors.linked(account, pat)
    subject = patient.fhir_user

    # The technologist uploads a PDF and an image, and the patient's reports as preliminary.
    as_tech = fhir(tech.token)
    files = {}
    for content, ctype in ((PDF + uuid.uuid4().hex.encode(), "application/pdf"), (PNG, "image/png")):
        made = as_tech.resource("Binary", **rl.binary_json(subject, content, ctype)).save()
        files[made["id"]] = (content, ctype)
    reports = []
    for n, cb in enumerate(cb_reports):
        body = {k: v for k, v in cb.items() if k not in ("id", *rl.DROPPED_REPORT_PARTS)}
        body |= {"status": "preliminary", "subject": {"reference": subject}, "performer": [{"reference": tech.fhir_user}]}
        if n == 0:
            body["presentedForm"] = [{"url": f"Binary/{bid}", "contentType": ctype} for bid, (_, ctype) in files.items()]
        made = as_tech.resource("DiagnosticReport", **body).save().serialize()
        assert made["status"] == "preliminary" and made["meta"]["versionId"] == "1", made["meta"]
        reports.append(made)
    with_files = reports[0]
    assert [(f["size"], f["hash"]) for f in with_files["presentedForm"]] == [(len(c), rl.sha1_b64(c)) for c, _ in files.values()]

    # The doctor approves every other report (the one with the files among them); the rest stay preliminary.
    as_doctor = fhir(doctor.token)
    approved, drafts = set(), set()
    for n, report in enumerate(reports):
        if n % 2:
            drafts.add(report["id"])
            continue
        current = as_doctor.reference("DiagnosticReport", report["id"]).to_resource()
        assert current["status"] == "preliminary"
        current["status"] = "final"
        current.save()
        got = as_doctor.get("DiagnosticReport", report["id"])
        assert got["status"] == "final" and got["meta"]["versionId"] == "2", got["meta"]
        assert {"reference": doctor.fhir_user} in got["resultsInterpreter"], got.get("resultsInterpreter")
        approved.add(report["id"])
    assert _report_ids(as_doctor, subject) == approved | drafts, "the doctor sees all the patient's reports"

    # The patient sees exactly the approved reports, and their files.
    as_patient = fhir(patient.token)
    assert _report_ids(as_patient, subject) == approved, "the patient must see the approved reports and no preliminary one"
    for rid in drafts:
        assert not _fhirpy_reads(as_patient, "DiagnosticReport", rid), "a preliminary report is visible to its patient"
    mine = as_patient.get("DiagnosticReport", with_files["id"])
    assert mine["status"] == "final" and mine["code"] == with_files["code"]
    for bid, (content, ctype) in files.items():
        binary = as_patient.get("Binary", bid)
        assert binary["contentType"] == ctype and base64.b64decode(binary["data"]) == content, f"Binary/{bid} as downloaded"

    # She verifies the approved version offline; a tampered copy fails.
    al.wait_verified(records, patient.token, "DiagnosticReport", with_files["id"], 2)
    version = as_patient.execute(f"DiagnosticReport/{with_files['id']}/_history/2", method="get")
    proof = as_patient.execute(f"DiagnosticReport/{with_files['id']}/_history/2/$verify", method="get")
    assert al.params(proof)["result"] == ["verified"], proof
    report_file, proof_file = tmp_path / "report.json", tmp_path / "verify.json"
    report_file.write_text(json.dumps(version))
    proof_file.write_text(json.dumps(proof))
    vkey = stack["LEDGER_VKEY"]
    ok = run_cli(medledger, "verify", "--resource", str(report_file), "--parameters", str(proof_file), "--vkey", vkey)
    assert ok.returncode == 0, ok.stderr.decode()
    assert ok.stdout.decode().startswith(f"verified: DiagnosticReport/{with_files['id']}/_history/2 is leaf "), ok.stdout
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(dict(version) | {"conclusion": "tampered: " + uuid.uuid4().hex}))
    bad = run_cli(medledger, "verify", "--resource", str(tampered), "--parameters", str(proof_file), "--vkey", vkey)
    assert bad.returncode == 1 and bad.stderr.decode().startswith("verify failed: "), (bad.stdout, bad.stderr)
    pdf_id = next(iter(files))
    al.wait_verified(records, patient.token, "Binary", pdf_id, 1)
    (tmp_path / "report.pdf").write_bytes(base64.b64decode(as_patient.get("Binary", pdf_id)["data"]))
    (tmp_path / "pdf.json").write_text(json.dumps(as_patient.execute(f"Binary/{pdf_id}/_history/1/$verify", method="get")))
    ok = run_cli(medledger, "verify", "--content", str(tmp_path / "report.pdf"), "--parameters", str(tmp_path / "pdf.json"), "--vkey", vkey)
    assert ok.returncode == 0 and ok.stdout.decode().startswith(f"verified: Binary/{pdf_id}/_history/1 "), (ok.stdout, ok.stderr)

    # The second doctor reads only while the patient's grant is active.
    as_second = fhir(second.token)
    bound = cl.REVOCATION_BOUND + cl.POLL_SLACK
    assert _report_ids(as_second, subject) == set() and not _fhirpy_reads(as_second, "DiagnosticReport", with_files["id"])
    as_patient_consent = fhir(patient.token, stack["CONSENT_URL"].rstrip("/") + "/fhir")
    grant = as_patient_consent.resource("Consent", **cl.consent_body(subject, second.fhir_user))
    grant.save()
    assert grant["status"] == "active" and grant["meta"]["versionId"] == "1"
    cl.wait_until(lambda: _fhirpy_reads(as_second, "DiagnosticReport", with_files["id"]), bound, "the grant reaching records")
    assert _report_ids(as_second, subject) == approved, "a grant opens the released reports, not the preliminary ones"
    assert base64.b64decode(as_second.get("Binary", pdf_id)["data"]) == files[pdf_id][0]
    grant["status"] = "inactive"
    grant.save()
    assert as_patient_consent.get("Consent", grant["id"])["status"] == "inactive"
    cl.wait_until(lambda: not _fhirpy_reads(as_second, "DiagnosticReport", with_files["id"]), bound, "the revocation reaching records")
    assert _report_ids(as_second, subject) == set(), "the revoked doctor still finds the reports"

    # The patient's audit view lists the reads of both doctors.
    audit_base = stack["AUDIT_URL"].rstrip("/") + "/fhir"
    as_patient_audit = fhir(patient.token, audit_base)

    def reads() -> list[dict]:
        return as_patient_audit.resources("AuditEvent").search(entity=f"DiagnosticReport/{with_files['id']}", subtype="read").limit(100).fetch_all()

    cl.wait_until(lambda: {doctor.fhir_user, second.fhir_user} <= {a for e in reads() for a in _agents(e)}, aud.DELIVERY_WAIT,
                  "both doctors' reads in the patient's audit view")  # fmt: skip
    seen = reads()
    for event in seen:
        rl.validate(event.serialize(), "an AuditEvent through fhirpy")
        assert subject in aud.patients(event), f"an event about someone else in the patient's view: {event.serialize()}"
    granted = [e for e in seen if second.fhir_user in _agents(e) and e["outcome"] == "0"]
    assert granted, "the second doctor's successful read while the grant was active"
    everything = as_patient_audit.resources("AuditEvent").search(patient=subject).limit(100).fetch_all()
    assert {e["id"] for e in seen} <= {e["id"] for e in everything}

    # The admin's login-time query lists the patient's logins, newest first.
    as_admin_audit = fhir(admin.token, audit_base)
    query = Raw(**{"agent:identifier": f"{aud.USER_SYSTEM}|{account.id}"})

    def logins() -> list[dict]:
        return as_admin_audit.resources("AuditEvent").search(query, subtype=LOGIN).sort("-date").limit(100).fetch_all()

    sids = {first.claims["sid"], login.claims["sid"]}
    cl.wait_until(lambda: sids <= {s for e in logins() for s in sids if s in json.dumps(e.serialize())}, aud.DELIVERY_WAIT,
                  "the patient's logins in the admin's query")  # fmt: skip
    found = logins()
    times = [e["recorded"] for e in found]
    assert times == sorted(times, reverse=True), f"not newest first: {times}"
    for event in found:
        rl.validate(event.serialize(), "a login AuditEvent through fhirpy")
        assert any(a.get("who", {}).get("identifier", {}).get("value") == account.id for a in event["agent"]), event.serialize()
