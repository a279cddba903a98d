"""Every stored version anchored in the ledger, and `$verify`, black-box against the stack
(real records, real ledger process, real PostgreSQL).

Oracles: the commitment and ledger entry are recomputed here with rfc8785 + hashlib.sha3_256
from what a client holds (the vread JSON, a Binary's bytes); the tlog-proofs `$verify` returns
are checked by Go's sumdb tlog/note (Tests/oracle/tlogcheck); fhirkit validates every FHIR
answer (recordslib's response hook). Tamper tests change rows directly in PostgreSQL, as an
attacker with database access would, and put them back afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import anchorlib as al
import auditlib as aud
import recordslib as rl
import requests
from e2e_support import run_tlogcheck, safe_free_port
from recordslib import assert_outcome, describe


def _tlog_parts(proof: str) -> tuple[int, list[str], str]:
    """(index, hashes, checkpoint) of a c2sp.org/tlog-proof@v1 text."""
    head, checkpoint = proof.split("\n\n", 1)
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1", lines[0]
    assert lines[1].startswith("index "), lines[1]
    return int(lines[1][6:]), lines[2:], checkpoint


def _raw_binary(records, token: str, content: bytes, patient: str) -> str:
    r = records.create("Binary", content, token, headers={"Content-Type": "application/pdf", "X-Security-Context": patient})
    assert r.status_code == 201, describe(r)
    return r.headers["Location"].split("/Binary/")[1].split("/")[0]


def test_every_version_is_anchored_and_verifies_independently(records, actors, rec_doctor, stack, tmp_path):
    """Create, update, approve and delete Patient, DiagnosticReport and Binary versions; each
    one verifies, its commitment and entry recompute from the client's copy, and Go's tlog
    accepts every proof under the ledger's checkpoint key."""
    desk = actors.receptionist().token
    patient = actors.patient(gp=rec_doctor)
    doc = rec_doctor.token
    versions: list[tuple[str, str, int, dict | None, bytes | None]] = []  # type, id, vid, resource, content

    report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user, value="1.50"), doc)
    versions.append(("DiagnosticReport", report["id"], 1, None, None))
    final = dict(report, status="final", conclusion="Normal; decimal 1.50 kept as text")
    records.must_update("DiagnosticReport", final, doc, if_match=1)
    versions.append(("DiagnosticReport", report["id"], 2, None, None))

    content = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
    binary = _raw_binary(records, doc, content, patient.fhir_user)
    versions.append(("Binary", binary, 1, None, content))

    other = records.must_create("Patient", rl.patient_body(system=rl.new_system("mrn")), desk)
    versions.append(("Patient", other["id"], 1, None, None))
    assert records.delete("Patient", other["id"], desk).status_code == 204
    versions.append(("Patient", other["id"], 2, None, None))

    checkpoints: list[str] = []
    inclusion: list[dict] = []
    for rtype, rid, vid, _, content in versions:
        p = al.wait_verified(records, doc if rtype != "Patient" else desk, rtype, rid, vid)
        ref = f"{rtype}/{rid}/_history/{vid}"
        assert p["target"][0]["reference"] == ref
        assert p["commitmentMatchesStored"] == [True] and p["commitmentMatchesLedger"] == [True], p
        assert "issue" not in p, p["issue"]
        token = doc if rtype != "Patient" else desk
        if rtype == "Patient" and vid == 2:  # the deletion: no body, commits to the empty string
            history = records.history("Patient", rid, desk).json()
            last_updated = next(e for e in history["entry"] if e["request"]["method"] == "DELETE")["response"]["lastModified"]
            al.check_against_resource(p, None, version_ref=ref, last_updated=last_updated)
            assert "searchColumnsMatch" not in p
        else:
            served = records.vread(rtype, rid, vid, token)
            assert served.status_code == 200, describe(served)
            resource = served.json()
            if rtype == "Binary":
                al.check_against_resource(p, None, content=content, version_ref=ref, last_updated=resource["meta"]["lastUpdated"])
            else:
                al.check_against_resource(p, resource, version_ref=ref, last_updated=resource["meta"]["lastUpdated"])
            assert p["searchColumnsMatch"] == [True]
        index, hashes, checkpoint = _tlog_parts(p["tlogProof"][0])
        assert index == p["leafIndex"][0] and checkpoint == p["checkpoint"][0]
        if checkpoint not in checkpoints:
            checkpoints.append(checkpoint)
        inclusion.append(
            {"checkpoint": checkpoints.index(checkpoint), "index": index, "leafData": al.b64(p["entry"][0].encode()), "hashes": hashes}
        )

    # A tampered entry under a genuine proof must be rejected by the oracle too.
    forged = dict(inclusion[0], kind="inclusion", name="entry with another commitment")
    entry = json.loads(base64.b64decode(forged["leafData"]))
    entry["commitment"] = al.b64(bytes(32))
    forged["leafData"] = al.b64(al.rfc8785.dumps(entry))
    doc_in = {"vkey": stack["LEDGER_VKEY"], "origin": stack["LEDGER_ORIGIN"], "checkpoints": checkpoints, "inclusion": inclusion,
              "consistency": [], "tampered": [forged]}  # fmt: skip
    path = tmp_path / "anchors.json"
    path.write_text(json.dumps(doc_in))
    out = run_tlogcheck(path)
    assert out.returncode == 0, f"tlogcheck: {out.stdout}\n{out.stderr[-4000:]}"
    assert f"{len(inclusion)} inclusion" in out.stdout and "1 tampered rejected" in out.stdout, out.stdout


def test_verify_follows_read_access(records, actors, rec_doctor):
    patient = actors.patient(gp=rec_doctor)
    stranger = actors.patient()
    report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user, status="final"), rec_doctor.token)
    p = al.wait_verified(records, patient.token, "DiagnosticReport", report["id"])
    assert p["target"][0]["reference"] == f"DiagnosticReport/{report['id']}/_history/1"
    # Hidden and unknown look alike; a role without the scope is refused; no token, 401.
    assert_outcome(al.verify(records, stranger.token, "DiagnosticReport", report["id"]), 404)
    assert_outcome(al.verify(records, patient.token, "DiagnosticReport", str(uuid.uuid4())), 404)
    assert_outcome(al.verify(records, patient.token, "DiagnosticReport", report["id"], 7), 404)
    assert_outcome(al.verify(records, actors.receptionist().token, "DiagnosticReport", report["id"]), 403)
    assert_outcome(al.verify(records, None, "DiagnosticReport", report["id"]), 401)
    # A preliminary report is not the patient's to see, so not to verify either.
    draft = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user), rec_doctor.token)
    assert_outcome(al.verify(records, patient.token, "DiagnosticReport", draft["id"], 1), 404)


def test_concurrent_burst_each_version_gets_exactly_one_entry(records, actors, rec_doctor, stack):
    patient = actors.patient(gp=rec_doctor)
    tok = rec_doctor.token

    def write(i: int) -> str:
        body = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user, value=f"burst-{i}"), tok)
        records.must_update("DiagnosticReport", dict(body, status="final"), tok, if_match=1)
        return body["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(write, range(60)))
    deadline = time.monotonic() + al.VERIFY_WAIT
    while al.anchored_counts(stack, ids) != (120, 120):
        assert time.monotonic() < deadline, f"anchored after {al.VERIFY_WAIT}s: {al.anchored_counts(stack, ids)} of 120"
        time.sleep(0.1)
    al.each_in_ledger_once(stack, ids, 120)
    for rid in ids[:5]:
        assert al.params(al.verify(records, tok, "DiagnosticReport", rid).json())["result"] == ["verified"]


def test_two_records_processes_share_the_outbox(records, actors, rec_doctor, stack, tmp_path):
    """A second records process on the same database: writes through both, each process's
    worker claims outbox rows (SKIP LOCKED); every version is anchored exactly once."""
    port = safe_free_port()
    proc = al.second_process(stack, "records", port, tmp_path / "records-2.log")
    try:
        second = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(second + "/health/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (tmp_path / "records-2.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the second records process is not ready after 60 s"
            time.sleep(0.2)
        patient = actors.patient(gp=rec_doctor)
        headers = {"Authorization": f"Bearer {rec_doctor.token}", "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        bases = [records.base, second + "/fhir"]

        def write(i: int) -> str:
            body = json.dumps(rl.report_body(patient.fhir_user, value=f"two-{i}"))
            r = requests.post(f"{bases[i % 2]}/DiagnosticReport", data=body, headers=headers, timeout=30)
            assert r.status_code == 201, describe(r)
            return r.json()["id"]

        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(write, range(300)))
        deadline = time.monotonic() + al.VERIFY_WAIT
        while al.anchored_counts(stack, ids) != (300, 300):
            assert time.monotonic() < deadline, f"anchored after {al.VERIFY_WAIT}s: {al.anchored_counts(stack, ids)} of 300"
            time.sleep(0.1)
        al.each_in_ledger_once(stack, ids, 300)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ledger_down_writes_succeed_and_are_anchored_after_restart(records, actors, rec_doctor, stack):
    """1,000 writes while the ledger is stopped all answer 201; once it is back, all are
    anchored within seconds, none twice."""
    patient = actors.patient(gp=rec_doctor)
    tok = rec_doctor.token
    al.stack_service(stack, "stop", "ledger")
    try:
        lock = threading.Lock()
        statuses: dict[int, int] = {}
        ids: list[str] = []

        def write(i: int) -> None:
            r = records.create("DiagnosticReport", rl.report_body(patient.fhir_user, value=f"offline-{i}"), tok)
            with lock:
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    ids.append(r.json()["id"])

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(write, range(1000)))
        assert statuses == {201: 1000}, statuses
        p = al.params(al.verify(records, tok, "DiagnosticReport", ids[0]).json())
        assert p["result"] == ["pending"] and "leafIndex" not in p and p["commitmentMatchesStored"] == [True], p
        assert al.anchored_counts(stack, ids) == (1000, 0)
    finally:
        al.stack_service(stack, "start", "ledger")
    back = time.monotonic()
    while al.anchored_counts(stack, ids) != (1000, 1000):
        assert time.monotonic() - back < 15, f"anchored 15 s after the ledger came back: {al.anchored_counts(stack, ids)} of 1000"
        time.sleep(0.1)
    took = time.monotonic() - back
    print(f"1000 pending versions anchored {took:.2f}s after the ledger was ready")
    al.each_in_ledger_once(stack, ids, 1000)


def _tampered_verdict(records, token: str, rtype: str, rid: str, vid: int) -> dict[str, list]:
    r = al.verify(records, token, rtype, rid, vid)
    assert r.status_code == 200, describe(r)
    p = al.params(r.json())
    assert p["result"] == ["mismatch"], p
    assert p.get("issue"), p
    return p


def test_tampering_with_stored_versions_is_reported(records, actors, rec_doctor, stack):
    patient = actors.patient(gp=rec_doctor)
    tok = rec_doctor.token
    report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user), tok)
    rid = report["id"]
    records.must_update("DiagnosticReport", dict(report, status="final"), tok, if_match=1)
    for vid in (1, 2):
        al.wait_verified(records, tok, "DiagnosticReport", rid, vid)
    db = stack["RECORDS_DATABASE_URL"]

    def at(alias: str = "") -> str:
        return f"{alias}type = 'DiagnosticReport' AND {alias}id = '{rid}'"

    where = at()

    # A changed body byte: AES-GCM refuses it.
    al.tamper(db, f"UPDATE resource_versions SET body = set_byte(body, 40, get_byte(body, 40) # 1) WHERE {where} AND version = 1")
    try:
        p = _tampered_verdict(records, tok, "DiagnosticReport", rid, 1)
        assert any("authentication" in i for i in p["issue"]), p["issue"]
    finally:
        al.tamper(db, f"UPDATE resource_versions SET body = set_byte(body, 40, get_byte(body, 40) # 1) WHERE {where} AND version = 1")
    al.wait_verified(records, tok, "DiagnosticReport", rid, 1)

    # A changed stored commitment.
    al.tamper(db, f"UPDATE resource_versions SET commitment = sha256(commitment) WHERE {where} AND version = 2")
    try:
        p = _tampered_verdict(records, tok, "DiagnosticReport", rid, 2)
        assert p["commitmentMatchesStored"] == [False] and p["commitmentMatchesLedger"] == [True], p
    finally:
        al.tamper(db, f"""UPDATE resource_versions v SET commitment = decode(o.entry::json->>'commitment', 'base64')
                          FROM ledger_outbox o WHERE o.seq = v.seq AND {at("v.")} AND v.version = 2""")  # fmt: skip
    al.wait_verified(records, tok, "DiagnosticReport", rid, 2)

    # A search column that no longer says what the body says.
    al.tamper(db, f"UPDATE resources SET status = 'cancelled' WHERE {where}")
    try:
        p = _tampered_verdict(records, tok, "DiagnosticReport", rid, 2)
        assert p["searchColumnsMatch"] == [False] and p["commitmentMatchesLedger"] == [True], p
    finally:
        al.tamper(db, f"UPDATE resources SET status = 'final' WHERE {where}")
    al.tamper(db, f"UPDATE search_index SET code = 'preliminary' WHERE {where} AND param = 'status'")
    try:
        p = _tampered_verdict(records, tok, "DiagnosticReport", rid, 2)
        assert p["searchColumnsMatch"] == [False], p
    finally:
        al.tamper(db, f"UPDATE search_index SET code = 'final' WHERE {where} AND param = 'status'")
    al.wait_verified(records, tok, "DiagnosticReport", rid, 2)

    # Two versions' ciphertexts swapped: each is bound to its own place.
    swap = f"""UPDATE resource_versions v SET body = w.body FROM resource_versions w
               WHERE v.type = w.type AND v.id = w.id AND v.version + w.version = 3 AND {at("v.")}"""
    al.tamper(db, swap)
    try:
        for vid in (1, 2):
            p = _tampered_verdict(records, tok, "DiagnosticReport", rid, vid)
            assert any("authentication" in i for i in p["issue"]), p["issue"]
    finally:
        al.tamper(db, swap)
    for vid in (1, 2):
        al.wait_verified(records, tok, "DiagnosticReport", rid, vid)


ANCHOR_EXT = "https://medledger.dev/fhir/StructureDefinition/ledger-anchor"


def _anchor(provenance: dict) -> dict:
    ext = next(e for e in provenance["extension"] if e["url"] == ANCHOR_EXT)
    return {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]}


def test_each_version_has_a_provenance_with_its_anchor(records, actors, rec_doctor, stack):
    patient = actors.patient(gp=rec_doctor)
    stranger = actors.patient()
    doc = rec_doctor.token
    report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user), doc)
    rid = report["id"]
    records.must_update("DiagnosticReport", dict(report, status="final"), doc, if_match=1)
    verified = {vid: al.wait_verified(records, doc, "DiagnosticReport", rid, vid) for vid in (1, 2)}

    bundle = rl.assert_bundle(records.search("Provenance", {"target": f"DiagnosticReport/{rid}"}, doc))
    found = [e["resource"] for e in bundle["entry"]]
    assert [p["target"][0]["reference"] for p in found] == [f"DiagnosticReport/{rid}/_history/{v}" for v in (2, 1)]
    for prov in found:
        vid = int(prov["target"][0]["reference"].rsplit("/", 1)[1])
        anchor = _anchor(prov)
        assert anchor["status"] == "anchored" and anchor["leafIndex"] == verified[vid]["leafIndex"][0], anchor
        assert anchor["commitment"] == verified[vid]["commitment"][0]
        assert anchor["logOrigin"] == stack["LEDGER_ORIGIN"]
        assert prov["agent"][0]["who"] == {"reference": rec_doctor.fhir_user}
        assert prov["activity"]["coding"][0]["code"] == ("CREATE" if vid == 1 else "UPDATE")
        served = records.vread("DiagnosticReport", rid, vid, doc).json()
        assert prov["recorded"] == served["meta"]["lastUpdated"]
        # Read by id gives the same resource.
        again = records.read("Provenance", prov["id"], doc)
        assert again.status_code == 200 and again.json() == prov, describe(again)

    one = rl.assert_bundle(records.search("Provenance", {"target": f"DiagnosticReport/{rid}/_history/1"}, doc))
    assert [e["resource"]["target"][0]["reference"] for e in one["entry"]] == [f"DiagnosticReport/{rid}/_history/1"]
    # The patient sees the final version's Provenance (released), not the preliminary one's.
    mine = rl.assert_bundle(records.search("Provenance", {"target": f"DiagnosticReport/{rid}"}, patient.token))
    assert [e["resource"]["target"][0]["reference"] for e in mine["entry"]] == [f"DiagnosticReport/{rid}/_history/2"]
    assert records.search("Provenance", {"target": f"DiagnosticReport/{rid}"}, stranger.token).json().get("entry") is None
    assert_outcome(records.read("Provenance", found[0]["id"], stranger.token), 404)
    assert_outcome(records.search("Provenance", {"target": f"DiagnosticReport/{rid}"}, actors.receptionist().token), 403)
    assert_outcome(records.search("Provenance", {"subject": "x"}, doc), 400)
    assert_outcome(records.create("Provenance", {"resourceType": "Provenance"}, doc), 405)
    # Paging by the patient: two per page, newest first, every version of theirs once.
    pages = records.pages(rl.assert_bundle(records.search("Provenance", {"patient": patient.fhir_user, "_count": 1}, doc)), doc)
    refs = [e["resource"]["target"][0]["reference"] for page in pages for e in page.get("entry", [])]
    assert f"DiagnosticReport/{rid}/_history/1" in refs and f"DiagnosticReport/{rid}/_history/2" in refs
    assert len(refs) == len(set(refs))


def _verify_all(records, admin_token: str) -> dict[str, list]:
    started = time.monotonic()
    r = records.request("POST", "/$verify-all", admin_token, timeout=600)
    assert r.status_code == 200, describe(r)
    p = al.params(r.json())
    print(f"$verify-all: {p['versionsChecked'][0]} versions, {p['leavesScanned'][0]} leaves in {time.monotonic() - started:.1f}s")
    return p


def test_verify_all_finds_a_deleted_version_and_an_edited_leaf(records, actors, rec_doctor, rec_admin, stack):
    patient = actors.patient(gp=rec_doctor)
    doc = rec_doctor.token
    report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user), doc)
    rid = report["id"]
    records.must_update("DiagnosticReport", dict(report, status="final"), doc, if_match=1)
    leaf = al.wait_verified(records, doc, "DiagnosticReport", rid, 1)["leafIndex"][0]
    al.wait_verified(records, doc, "DiagnosticReport", rid, 2)

    clean = _verify_all(records, rec_admin.token)
    assert clean["result"] == ["ok"] and clean["findingsTotal"] == [0], clean.get("finding")
    assert clean["ledgerCheck"] == ["ok"] and clean["versionsChecked"][0] >= 2 and clean["leavesScanned"][0] > leaf
    assert_outcome(records.request("POST", "/$verify-all", doc), 403)
    assert_outcome(records.request("POST", "/$verify-all", None), 401)

    records_db, ledger_db = stack["RECORDS_DATABASE_URL"], stack["LEDGER_DATABASE_URL"]
    version = f"type = 'DiagnosticReport' AND id = '{rid}' AND version = 1"
    al.tamper(records_db, f"""
        CREATE TABLE zz_saved_version AS SELECT * FROM resource_versions WHERE {version};
        CREATE TABLE zz_saved_outbox AS SELECT o.* FROM ledger_outbox o JOIN zz_saved_version v ON v.seq = o.seq;
        DELETE FROM ledger_outbox WHERE seq IN (SELECT seq FROM zz_saved_version);
        DELETE FROM resource_versions WHERE {version};""")  # fmt: skip
    original = al.sql(ledger_db, f"SELECT encode(data, 'hex') FROM leaves WHERE idx = {leaf - 1}")
    al.tamper(ledger_db, f"UPDATE leaves SET data = data || '\\x20'::bytea WHERE idx = {leaf - 1}")
    try:
        found = _verify_all(records, rec_admin.token)
        findings = found.get("finding", [])
        assert found["result"] == ["findings"] and found["ledgerCheck"] == ["findings"], findings
        assert any(f.startswith(f"ledger leaf {leaf} ") for f in findings), findings
        assert any(f.startswith("ledger:") and str(leaf - 1) in f for f in findings), findings
    finally:
        al.tamper(ledger_db, f"UPDATE leaves SET data = decode('{original}', 'hex') WHERE idx = {leaf - 1}")
        al.tamper(records_db, """
            INSERT INTO resource_versions SELECT * FROM zz_saved_version;
            INSERT INTO ledger_outbox SELECT * FROM zz_saved_outbox;
            DROP TABLE zz_saved_outbox, zz_saved_version;""")  # fmt: skip
    assert _verify_all(records, rec_admin.token)["result"] == ["ok"]


def test_erasing_a_patient_keeps_the_ledger_and_every_other_proof(records, actors, rec_doctor, rec_admin, stack):
    """Crypto-shredding: the patient's versions answer 410 (read, vread, $verify), leave every
    search, and their plaintext search values are gone; the ledger and everyone else's proofs
    stay valid."""
    # Type histories are read from here on: versions other tests wrote before are not this test's.
    since = rl.now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    erased, kept = actors.patient(gp=rec_doctor), actors.patient(gp=rec_doctor)
    doc, desk = rec_doctor.token, actors.receptionist().token
    gone = records.must_create("DiagnosticReport", rl.report_body(erased.fhir_user, status="final"), doc)
    binary = _raw_binary(records, doc, b"%PDF-1.4 erase me", erased.fhir_user)
    other = records.must_create("DiagnosticReport", rl.report_body(kept.fhir_user, status="final"), doc)
    for rtype, rid in (("DiagnosticReport", gone["id"]), ("Binary", binary), ("DiagnosticReport", other["id"])):
        al.wait_verified(records, doc, rtype, rid)
    family = erased.resource["name"][0]["family"]
    assert rl.ids(records.must_search("Patient", {"family": family}, desk)) == [erased.id]

    assert_outcome(records.request("POST", f"/Patient/{erased.id}/$erase", doc), 403)
    assert_outcome(records.request("POST", f"/Patient/{uuid.uuid4()}/$erase", rec_admin.token), 404)
    r = records.request("POST", f"/Patient/{erased.id}/$erase", rec_admin.token)
    assert r.status_code == 200, describe(r)

    assert_outcome(records.read("DiagnosticReport", gone["id"], doc), 410)
    assert_outcome(records.vread("DiagnosticReport", gone["id"], 1, doc), 410)
    assert_outcome(records.read("Patient", erased.id, desk), 410)
    assert_outcome(records.read("Binary", binary, doc, accept="*/*"), 410)
    assert_outcome(al.verify(records, doc, "DiagnosticReport", gone["id"]), 410)
    # Writing to an erased resource would make the patient a new data key: refused as well.
    assert_outcome(records.update("Patient", erased.id, dict(erased.resource, gender="other"), desk), 410)
    assert_outcome(records.update("DiagnosticReport", gone["id"], dict(gone, conclusion="back?"), doc), 410)
    assert al.sql(stack["RECORDS_DATABASE_URL"], f"SELECT count(*) FROM data_keys WHERE owner = 'Patient/{erased.id}'") == "0"
    audited = aud.wait_stored(stack, f"Patient/{erased.id}", '"code":"erase"')
    assert audited and audited[0]["subtype"][1]["display"] == "$erase", audited
    assert rl.ids(records.must_search("Patient", {"family": family}, desk)) == []
    assert rl.ids(records.must_search("DiagnosticReport", {"patient": erased.fhir_user}, doc)) == []
    # A type's history leaves the erased versions out (as its searches do); their own history is 410.
    for rtype, token, rid in (("Patient", desk, erased.id), ("DiagnosticReport", doc, gone["id"])):
        r = records.history(rtype, None, token, {"_count": "1000", "_since": since})
        assert r.status_code == 200, rl.describe(r)
        assert rid not in {e["resource"]["id"] for e in r.json().get("entry", []) if "resource" in e}
        assert_outcome(records.history(rtype, rid, token), 410)
    assert al.sql(stack["RECORDS_DATABASE_URL"], f"SELECT count(*) FROM data_keys WHERE owner = 'Patient/{erased.id}'") == "0"
    assert al.sql(stack["RECORDS_DATABASE_URL"], f"SELECT count(*) FROM search_index WHERE id IN ('{erased.id}', '{gone['id']}') AND param <> 'general-practitioner'") == "0"

    assert al.wait_verified(records, doc, "DiagnosticReport", other["id"])["commitmentMatchesLedger"] == [True]
    sweep = _verify_all(records, rec_admin.token)
    assert sweep["result"] == ["ok"] and sweep["ledgerCheck"] == ["ok"], sweep.get("finding")
    assert sweep["versionsErased"][0] >= 3
