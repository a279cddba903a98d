"""`medledger verify` on report versions downloaded from the running stack: the vread JSON (or
a Binary's bytes) and the raw `$verify` Parameters, checked offline against LEDGER_VKEY alone.
A genuine version verifies; a changed copy, another version, a changed salt or another key
fails with one `verify failed: ` line and exit status 1."""

from __future__ import annotations

import base64
import json
import os

import anchorlib as al
import ledgerlib
import recordslib as rl
import rfc8785
from e2e_support import run_cli
from recordslib import describe

DECIMAL_EXTENSION = "https://example.org/fhir/StructureDefinition/e2e-decimal"


def _write(tmp_path, name: str, data: bytes | str) -> str:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


def _report_text(patient: str, conclusion: str, rid: str | None = None) -> str:
    """A final report whose decimal is written 1.50: records keeps the text, RFC 8785 makes it 1.5."""
    body = rl.report_body(patient, status="final", conclusion=conclusion,
                          extension=[{"url": DECIMAL_EXTENSION, "valueDecimal": "DECIMAL"}])  # fmt: skip
    if rid:
        body["id"] = rid
    return json.dumps(body).replace('"DECIMAL"', "1.50")


def _download(records, token: str, rtype: str, rid: str, vid: int) -> tuple[bytes, bytes, dict[str, list]]:
    """(vread bytes, raw `$verify` bytes, its parameters) of an anchored version."""
    al.wait_verified(records, token, rtype, rid, vid)
    served = records.vread(rtype, rid, vid, token)
    assert served.status_code == 200, describe(served)
    r = al.verify(records, token, rtype, rid, vid)
    assert r.status_code == 200, describe(r)
    return served.content, r.content, al.params(r.json())


def _verified_line(p: dict[str, list], origin: str) -> str:
    size = int(p["checkpoint"][0].split("\n")[1])
    return f"verified: {p['target'][0]['reference']} is leaf {p['leafIndex'][0]} of {origin} (tree size {size})"


def _ok(proc, want: str, what: str) -> None:
    assert proc.returncode == 0, f"{what}: {proc.stderr.decode()}"
    assert proc.stdout.decode().strip() == want, what


def _failed(proc, what: str, mentioning: str = "") -> None:
    err = proc.stderr.decode()
    assert proc.returncode == 1, f"{what}: exit {proc.returncode}, stdout {proc.stdout.decode()!r} stderr {err!r}"
    assert err.startswith("verify failed: ") and len(err.strip().splitlines()) == 1, f"{what}: stderr {err!r}"
    assert mentioning in err, f"{what}: {err!r} does not mention {mentioning!r}"


def test_cli_verifies_a_downloaded_report_and_rejects_changes(records, actors, rec_doctor, stack, medledger, tmp_path):
    patient = actors.patient(gp=rec_doctor)
    doc = rec_doctor.token
    r = records.create("DiagnosticReport", _report_text(patient.fhir_user, "Normal"), doc)
    assert r.status_code == 201, describe(r)
    rid = r.json()["id"]
    r = records.update("DiagnosticReport", rid, _report_text(patient.fhir_user, "Normal, reviewed", rid), doc, if_match=1)
    assert r.status_code == 200, describe(r)

    # The patient downloads version 2 and its proof material.
    served, raw_params, p = _download(records, patient.token, "DiagnosticReport", rid, 2)
    assert b"1.50" in served, "records keeps the decimal's text"
    vkey, origin = stack["LEDGER_VKEY"], stack["LEDGER_ORIGIN"]
    resource, params = _write(tmp_path, "report.json", served), _write(tmp_path, "verify.json", raw_params)
    want = _verified_line(p, origin)
    assert want.startswith(f"verified: DiagnosticReport/{rid}/_history/2 is leaf ")

    def verify(resource_file: str, params_file: str, key: str = vkey, *extra: str):
        return run_cli(medledger, "verify", "--resource", resource_file, "--parameters", params_file, "--vkey", key, *extra)

    _ok(verify(resource, params), want, "genuine")
    _ok(verify(resource, params, "@" + _write(tmp_path, "ledger.vkey", vkey + "\n"), "--origin", origin), want, "vkey file, origin")
    reformatted = json.dumps(json.loads(served), indent=2, sort_keys=True)
    _ok(verify(_write(tmp_path, "reformatted.json", reformatted), params), want, "reformatted copy")

    # What the holder might be shown instead of the genuine version.
    changed = dict(json.loads(served), conclusion="Abnormal")
    _failed(verify(_write(tmp_path, "changed.json", json.dumps(changed)), params), "conclusion changed", "commitment")
    version1, raw_params1, _ = _download(records, doc, "DiagnosticReport", rid, 1)
    params1 = _write(tmp_path, "verify1.json", raw_params1)
    _ok(verify(_write(tmp_path, "report1.json", version1), params1), _verified_line(al.params(json.loads(raw_params1)), origin), "v1")
    _failed(verify(_write(tmp_path, "report1.json", version1), params), "version 1 with version 2's proof", "_history/1")
    _failed(verify(resource, params1), "version 2 with version 1's proof", "_history/1")
    retimed = json.loads(served)
    retimed["meta"]["lastUpdated"] = "2001-01-01T00:00:00Z"
    _failed(verify(_write(tmp_path, "retimed.json", json.dumps(retimed)), params), "lastUpdated changed", "lastUpdated")

    # Changed proof material: another salt, a forged entry for the changed copy, another key.
    body = json.loads(raw_params)
    salt = next(x for x in body["parameter"] if x["name"] == "salt")
    salt["valueBase64Binary"] = base64.b64encode(bytes(32)).decode()
    _failed(verify(resource, _write(tmp_path, "salted.json", json.dumps(body))), "other salt", "salt")
    body = json.loads(raw_params)
    entry = next(x for x in body["parameter"] if x["name"] == "entry")
    forged = al.expected_entry(base64.b64decode(p["salt"][0]), rfc8785.dumps(changed), p["target"][0]["reference"],
                               changed["meta"]["lastUpdated"])  # fmt: skip
    entry["valueString"] = forged.decode()
    _failed(verify(_write(tmp_path, "changed.json", json.dumps(changed)), _write(tmp_path, "forged.json", json.dumps(body))),
            "forged entry", "not proven")  # fmt: skip
    _, wrong_vkey = ledgerlib.generate_note_key(origin)
    _failed(verify(resource, params, wrong_vkey), "wrong vkey", "checkpoint")
    _failed(verify(resource, params, vkey, "--origin", "other.example/ledger"), "wrong origin", "other.example/ledger")


def test_cli_verifies_binary_content_and_deletions(records, actors, rec_doctor, stack, medledger, tmp_path):
    patient = actors.patient(gp=rec_doctor)
    doc = rec_doctor.token
    vkey, origin = stack["LEDGER_VKEY"], stack["LEDGER_ORIGIN"]
    content = b"%PDF-1.4\n" + os.urandom(150_000) + b"\n%%EOF\n"
    r = records.create("Binary", content, doc, headers={"Content-Type": "application/pdf", "X-Security-Context": patient.fhir_user})
    assert r.status_code == 201, describe(r)
    bid = r.headers["Location"].split("/Binary/")[1].split("/")[0]
    served, raw_params, p = _download(records, doc, "Binary", bid, 1)
    raw = records.read("Binary", bid, doc, accept="*/*")
    assert raw.status_code == 200 and raw.content == content, describe(raw)
    params = _write(tmp_path, "binary-verify.json", raw_params)
    want = _verified_line(p, origin)

    def verify(*args: str):
        return run_cli(medledger, "verify", *args, "--parameters", params, "--vkey", vkey)

    _ok(verify("--content", _write(tmp_path, "report.pdf", raw.content)), want, "raw content")
    _ok(verify("--resource", _write(tmp_path, "binary.json", served)), want, "vread JSON with data")
    flipped = bytearray(content)
    flipped[1000] ^= 0x01
    _failed(verify("--content", _write(tmp_path, "flipped.pdf", bytes(flipped))), "flipped byte", "commitment")
    _failed(verify("--deleted"), "content claimed deleted", "commitment")

    # A deletion commits to the empty byte string; only the Parameters are needed.
    desk = actors.receptionist().token
    other = records.must_create("Patient", rl.patient_body(system=rl.new_system("mrn")), desk)
    assert records.delete("Patient", other["id"], desk).status_code == 204
    al.wait_verified(records, desk, "Patient", other["id"], 2)
    r = al.verify(records, desk, "Patient", other["id"], 2)
    deleted = _write(tmp_path, "deleted-verify.json", r.content)
    proc = run_cli(medledger, "verify", "--deleted", "--parameters", deleted, "--vkey", vkey)
    _ok(proc, _verified_line(al.params(r.json()), origin), "deletion")
