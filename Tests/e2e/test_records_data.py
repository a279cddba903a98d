"""Records with realistic data, black-box: carebundle's synthetic Patients, Practitioners and
DiagnosticReports (US Core shaped: narrative, meta.profile/security, LOINC panels) loaded the
way MedLedger's users would (admin: Practitioner, then the doctor's account; receptionist:
Patient with generalPractitioner; doctor: reports), round-tripped, validated and searched;
and report text never in the database in plaintext (pg_dump of the records database and
the cluster's raw files after a CHECKPOINT, with a positive control for each).

Oracles: carebundle (PyPI) for the data, fhirkit for validity, fhirpy for searches,
pg_dump/psql and the files themselves for the plaintext scan.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import auditlib as aud
import carebundle
import pytest
import recordslib as rl
from e2e_support import read_kv, repo_root

def test_carebundle_data_round_trips_and_is_searchable(records, actors, rec_receptionist):
    seed = secrets.randbelow(2**31)
    cohort = carebundle.generate_cohort(count=3, seed=seed, include_vitals=False)
    isys, rsys = rl.new_system("cb-mrn"), rl.new_system("cb-acc")
    loaded = []  # (doctor, patient, [reports])
    for n, bundle in enumerate(cohort):
        parts = rl.carebundle_parts(json.loads(carebundle.to_json(bundle)))
        assert len(parts["Patient"]) == 1 and len(parts["Practitioner"]) == 1 and parts["DiagnosticReport"], {
            k: len(v) for k, v in parts.items()
        }
        refs: dict[str, str] = {}
        (prac_url, prac), = parts["Practitioner"]
        doctor = actors.doctor({k: v for k, v in prac.items() if k != "id"})
        assert rl.without_meta(doctor.resource) == {k: v for k, v in prac.items() if k != "id"}, "Practitioner round trip"
        refs[prac_url] = doctor.fhir_user

        (pat_url, pat), = parts["Patient"]
        sent_patient = {k: v for k, v in pat.items() if k != "id"}
        sent_patient["identifier"] = sent_patient.get("identifier", []) + [{"system": isys, "value": f"p{n}"}]
        sent_patient["generalPractitioner"] = [{"reference": doctor.fhir_user}]
        patient = records.must_create("Patient", sent_patient, rec_receptionist.token, "carebundle Patient")
        assert rl.without_meta(patient) == sent_patient, "Patient round trip"
        refs[pat_url] = f"Patient/{patient['id']}"

        reports = []
        for k, (_, dr) in enumerate(parts["DiagnosticReport"]):
            sent = {key: v for key, v in dr.items() if key not in ("id", *rl.DROPPED_REPORT_PARTS)}
            sent["subject"] = {"reference": refs[dr["subject"]["reference"]]}
            sent["performer"] = [{"reference": refs[p["reference"]]} for p in dr.get("performer") or [] if p["reference"] in refs]
            if not sent["performer"]:
                del sent["performer"]
            sent["identifier"] = [{"system": rsys, "value": f"r{n}-{k}"}]
            rl.validate(sent, "the rewritten carebundle report")
            got = records.must_create("DiagnosticReport", sent, doctor.token, "carebundle DiagnosticReport")
            expected = dict(sent)
            if sent["status"] == "final":
                expected["resultsInterpreter"] = got.get("resultsInterpreter")
                assert {"reference": doctor.fhir_user} in (got.get("resultsInterpreter") or []), got.get("resultsInterpreter")
            assert rl.without_meta(got) == expected, "DiagnosticReport round trip"
            assert records.must_read("DiagnosticReport", got["id"], doctor.token) == got
            reports.append(got)
        loaded.append((doctor, patient, reports))

    for doctor, patient, reports in loaded:
        tok = doctor.token
        pref = f"Patient/{patient['id']}"
        by_patient = records.must_search("DiagnosticReport", {"patient": pref, "_count": 100}, tok)
        assert set(rl.ids(by_patient)) == {r["id"] for r in reports} and by_patient["total"] == len(reports)
        codes = defaultdict(set)
        for r in reports:
            for c in r["code"]["coding"]:
                codes[(c["system"], c["code"])].add(r["id"])
        for (system, code), want in codes.items():
            got = records.search_ids("DiagnosticReport", {"patient": pref, "code": f"{system}|{code}"}, tok)
            assert set(got) == want, (system, code)
        lab = records.search_ids("DiagnosticReport", {"patient": pref, "category": "http://terminology.hl7.org/CodeSystem/v2-0074|LAB",
                                                      "_count": 100}, tok)  # fmt: skip
        assert set(lab) == {r["id"] for r in reports if any(c.get("code") == "LAB" for cat in r.get("category", []) for c in cat["coding"])}
        day = reports[0]["effectiveDateTime"][:10]
        dated = records.search_ids("DiagnosticReport", {"patient": pref, "date": day, "_count": 100}, tok)
        assert set(dated) == {r["id"] for r in reports if r.get("effectiveDateTime", "")[:10] == day}
        family = patient["name"][0]["family"]
        found = records.search_ids("Patient", {"family": family, "birthdate": patient["birthDate"], "identifier": f"{isys}|"},
                                   rec_receptionist.token)  # fmt: skip
        assert found == [patient["id"]], (family, found)
        assert records.search_ids("Patient", {"identifier": f"{isys}|"}, tok) == [patient["id"]], "a doctor sees own patients only"

        fc = rl.fhirpy_client(records.base, tok)
        walked = fc.resources("DiagnosticReport").search(identifier=f"{rsys}|").limit(2).fetch_all()
        assert {r["id"] for r in walked} == {r["id"] for r in reports}
        for r in walked:
            rl.validate(r.serialize(), "a carebundle report read through fhirpy")
        assert fc.get("Patient", patient["id"])["name"] == patient["name"]


# --------------------------------------------------------------------------- no plaintext


def _pg_bindir() -> Path:
    p = subprocess.run([str(repo_root() / "deploy/local/pg"), "bindir"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or not p.stdout.strip():
        pytest.fail(f"deploy/local/pg bindir failed: {p.stderr[-500:]}", pytrace=False)
    return Path(p.stdout.strip())


def _psql(bindir: Path, url: str, sql: str) -> str:
    p = subprocess.run([str(bindir / "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, f"psql {sql!r}: {p.stderr[-800:]}"
    return p.stdout.strip()


def _needles(marker: str) -> dict[str, bytes]:
    """The marker as plaintext, hex (bytea text form) and base64 at each of the 3 offsets."""
    raw = marker.encode()
    out = {"plain": raw, "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode()}
    for shift in range(3):
        b64 = base64.b64encode(b"\0" * shift + raw)
        out[f"base64+{shift}"] = b64[4:-4]  # the part that does not depend on what surrounds it
    return out


def _scan_files(paths: list[Path], needles: dict[str, bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for name, needle in needles.items():
            if needle in data:
                found[name].append(str(path))
    return dict(found)


def test_report_text_is_never_plaintext_in_the_database(records, stack, rec_doctor, rec_patient):
    for key in ("RECORDS_DATABASE_URL", "PG_URL"):
        if not stack.get(key):
            pytest.fail(f"STACK_ENV lacks {key}", pytrace=False)
    bindir = _pg_bindir()
    tok = rec_doctor.token
    marker = f"E2EPLAIN{secrets.token_hex(16)}"
    content = f"Scan report. Impression: {marker}. No further action.".encode()
    b = records.create("Binary", content, tok, headers={"Content-Type": "text/plain", "X-Security-Context": rec_patient.fhir_user})
    assert b.status_code == 201, rl.describe(b)
    binary_id = b.headers["Location"].split("/Binary/")[1].split("/")[0]
    report = records.must_create("DiagnosticReport", rl.report_body(
        rec_patient.fhir_user, status="preliminary", conclusion=f"Findings consistent with {marker}.",
        presented=[{"url": f"Binary/{binary_id}"}],
        text={"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{marker}</div>'}), tok)  # fmt: skip
    v2 = records.must_update("DiagnosticReport", {**report, "status": "final", "conclusion": f"Final: {marker}"}, tok)
    assert marker in records.must_read("DiagnosticReport", report["id"], tok)["conclusion"], "the report was stored"
    assert v2["meta"]["versionId"] == "2"
    needles = _needles(marker)

    # 1. pg_dump of the records database: no marker in any form; the report's rows are there.
    p = subprocess.run([str(bindir / "pg_dump"), "--no-owner", stack["RECORDS_DATABASE_URL"]], capture_output=True, timeout=300)
    assert p.returncode == 0, f"pg_dump: {p.stderr[-800:]!r}"
    dump = p.stdout
    assert report["id"].encode() in dump, "control: the report's id is not in the dump; wrong database?"
    leaks = [name for name, needle in needles.items() if needle in dump]
    assert not leaks, f"the report text is in pg_dump of the records database ({leaks})"

    # 2. Every table's rows as text (psql), the same check.
    db = urlsplit(stack["RECORDS_DATABASE_URL"]).path.lstrip("/")
    tables = _psql(bindir, stack["RECORDS_DATABASE_URL"],
                   "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                   "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").split()  # fmt: skip
    assert tables, "no tables in the records database"
    for t in tables:
        text = _psql(bindir, stack["RECORDS_DATABASE_URL"], f"SELECT coalesce(string_agg(x::text, E'\\n'), '') FROM {t} x")
        leaks = [name for name, needle in needles.items() if needle.decode() in text]
        assert not leaks, f"the report text is in table {t} ({leaks})"

    # 3. The cluster's files after a CHECKPOINT: the database's relation files and the WAL.
    cluster = read_kv(Path(stack["STACK_DIR"]) / "pg" / "cluster.env")
    data_dir = Path(cluster.get("PG_DATA", ""))
    assert (data_dir / "PG_VERSION").is_file(), f"no cluster data directory at {data_dir!r}"
    control_db = _psql(bindir, stack["PG_URL"], "SELECT current_database()")
    control = f"E2ECONTROL{secrets.token_hex(16)}"
    probe = f"e2e_plaintext_probe_{uuid.uuid4().hex[:12]}"
    _psql(bindir, stack["PG_URL"], f"CREATE TABLE {probe} (t text); INSERT INTO {probe} VALUES ('{control}')")
    try:
        _psql(bindir, stack["PG_URL"], "CHECKPOINT")
        oids = dict(line.split("|") for line in _psql(bindir, stack["PG_URL"], "SELECT datname, oid FROM pg_database").splitlines())
        files = [f for f in (data_dir / "base" / oids[db]).rglob("*") if f.is_file()]
        assert files, f"no files for database {db} under {data_dir}"
        wal = [f for f in (data_dir / "pg_wal").glob("*") if f.is_file()]
        control_files = [f for f in (data_dir / "base" / oids[control_db]).rglob("*") if f.is_file()]
        seen_control = _scan_files(control_files, {"plain": control.encode()})
        assert seen_control, "control: a plaintext row written with psql is not found in the data files; the scan is blind"
        id_forms = {"text": report["id"].encode(), "uuid": uuid.UUID(report["id"]).bytes}
        assert _scan_files(files, id_forms), "control: the report's id is in none of the records database's files"
        leaks = _scan_files(files + wal, needles)
        assert not leaks, f"the report text is in the cluster's files: {leaks}"
    finally:
        _psql(bindir, stack["PG_URL"], f"DROP TABLE IF EXISTS {probe}")


# --------------------------------------------------------------------------- audit events


def _mentions(event: dict, needle: str) -> bool:
    if needle in json.dumps(event):
        return True
    for entity in event.get("entity") or []:
        q = entity.get("query")
        if q:
            try:
                if needle in base64.b64decode(q).decode(errors="replace"):
                    return True
            except ValueError:
                pass
    return False


def test_every_interaction_writes_an_audit_event(records, stack, rec_receptionist, rec_doctor, rec_patient):
    """Each create, read, vread, search (with its query), history, update, delete and Binary
    download becomes a valid FHIR AuditEvent in the audit chain (through records' outbox)."""
    start = aud.last_seq(stack)
    tok = rec_receptionist.token
    p = records.must_create("Patient", rl.patient_body(), tok)
    pid = p["id"]
    records.must_read("Patient", pid, tok)
    assert records.vread("Patient", pid, 1, tok).status_code == 200
    assert records.search_ids("Patient", {"_id": pid}, tok) == [pid]
    rl.assert_bundle(records.history("Patient", pid, tok), "history")
    records.must_update("Patient", {**p, "gender": "other"}, tok)
    assert records.delete("Patient", pid, tok).status_code == 204
    content = b"audit me " + uuid.uuid4().bytes
    b = records.create("Binary", content, rec_doctor.token, headers={"Content-Type": "application/pdf",
                                                                    "X-Security-Context": rec_patient.fhir_user})  # fmt: skip
    assert b.status_code == 201, rl.describe(b)
    bid = b.headers["Location"].split("/Binary/")[1].split("/")[0]
    d = records.read("Binary", bid, rec_doctor.token, accept="*/*")
    assert d.status_code == 200 and d.content == content

    want = {"create": {"create"}, "read": {"read"}, "vread": {"vread"}, "search": {"search", "search-type"},
            "history": {"history", "history-instance"}, "update": {"update"}, "delete": {"delete"}}  # fmt: skip
    rows: list[dict] = []

    def kinds(needle: str) -> list[str]:
        return [c.get("code") for ev in rows if _mentions(ev, needle) for c in ev.get("subtype") or []]

    def delivered() -> bool:
        rows[:] = aud.stored_events(stack, after=start)
        seen, bseen = set(kinds(pid)), set(kinds(bid))
        return all(codes & seen for codes in want.values()) and {"create", "read"} <= bseen

    deadline = time.monotonic() + aud.DELIVERY_WAIT
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.3)
    invalid: dict[str, str] = {}
    for ev in rows:
        assert ev.get("resourceType") == "AuditEvent", ev
        for problem in rl.fhir_problems(ev):
            invalid.setdefault(problem, json.dumps(ev)[:400])

    seen = kinds(pid)
    missing = [k for k, codes in want.items() if not codes & set(seen)]
    assert not missing, f"no AuditEvent for {missing} of Patient/{pid} (subtypes seen: {seen})"
    bseen = kinds(bid)
    assert "create" in bseen and "read" in bseen, f"Binary upload and download: subtypes {bseen}"
    assert not invalid, "fhirkit: audit events are not valid FHIR R4:\n  " + "\n  ".join(invalid) + (
        "\n" + next(iter(invalid.values()))
    )
