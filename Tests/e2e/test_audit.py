"""The audit service as its users meet it (issue 7): every login, upload, read, grant and
break-glass appears exactly once with its patient, also when audit was down while they happened;
patients see who read their reports and nothing else; the hash chain recomputes independently
(hashlib SHA3-256 over `rfc8785` text), its anchored heads are in the ledger, and tampering with
any row is reported. Black box: identity, records, consent, audit and the ledger as the stack runs
them. Every FHIR answer is checked by fhirkit.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import anchorlib as al
import auditlib as aud
import consentlib as cl
import pytest
import recordslib as rl
import rfc8785
from e2e_support import assert_problem

REASON = "patient unconscious in the emergency room, medication history needed now"


@pytest.fixture(scope="module")
def audit(stack, identity) -> aud.Audit:
    client = aud.Audit(stack)
    r = client.http.get(client.public + "/health/ready", timeout=10)
    assert r.status_code == 200, f"audit is not ready: {r.status_code} {r.text[:200]}"
    return client


@pytest.fixture(scope="module")
def consent(stack, identity) -> cl.Consent:
    return cl.Consent(stack)


def final_report(records, author, patient) -> dict:
    return records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user, status="final"), author.token, "a final report")


def exactly_one(audit, params: dict, token: str, what: str, where=lambda ev: True) -> dict:
    """Waits for the event `params` + `where` select, then insists there is exactly one."""
    deadline = time.monotonic() + aud.DELIVERY_WAIT
    while True:
        found = [ev for ev in audit.events(params, token) if where(ev)]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(found) == 1, f"{what}: {len(found)} events for {params}: {[ev.get('id') for ev in found]}"
    rl.validate(json.dumps(found[0]).encode(), what)
    return found[0]


def agent_refs(event: dict) -> set[str]:
    return {a.get("who", {}).get("reference") for a in event.get("agent", [])} - {None}


def test_each_action_is_audited_once_with_its_patient_even_while_audit_was_down(audit, records, consent, actors, identity, admin, stack):
    gp, other, emergency, tech = actors.doctor(), actors.doctor(), actors.doctor(), actors.technologist()
    patient = actors.patient(gp=gp)
    tokens = {who.name: who.token for who in (gp, emergency, tech, patient)}  # logged in before audit stops
    al.stack_service(stack, "stop", "audit")
    try:
        login = identity.login_tokens(patient.account.username, patient.account.password)
        report = records.must_create("DiagnosticReport", rl.report_body(patient.fhir_user), tokens[tech.name], "upload")
        records.must_update("DiagnosticReport", {**report, "status": "final"}, tokens[gp.name], "the doctor approving the report")
        assert records.read("DiagnosticReport", report["id"], tokens[gp.name]).status_code == 200
        grant = consent.create(cl.consent_body(patient.fhir_user, other.fhir_user), tokens[patient.name])
        bg = consent.break_glass(tokens[emergency.name], patient.fhir_user, REASON)
        assert bg.status_code == 201, rl.describe(bg)
    finally:
        al.stack_service(stack, "start", "audit")

    token = admin.token
    sid = login.claims["sid"]
    ev = exactly_one(audit, {"agent:identifier": f"{aud.USER_SYSTEM}|{patient.account.id}", "subtype": "110122"}, token,
                     "the login while audit was down",
                     lambda e: sid in json.dumps(e) and e.get("outcome") == "0")  # fmt: skip
    assert ev["type"]["code"] == "110114" and patient.fhir_user in agent_refs(ev), ev

    ev = exactly_one(audit, {"entity": f"DiagnosticReport/{report['id']}", "subtype": "create"}, token, "the upload")
    assert aud.patients(ev) == {patient.fhir_user} and agent_refs(ev) == {tech.fhir_user}, ev
    assert ev["action"] == "C" and ev["outcome"] == "0", ev

    ev = exactly_one(audit, {"entity": f"DiagnosticReport/{report['id']}", "subtype": "approve"}, token, "the approval")
    assert agent_refs(ev) == {gp.fhir_user} and ev["action"] == "U" and aud.patients(ev) == {patient.fhir_user}, ev

    ev = exactly_one(audit, {"entity": f"DiagnosticReport/{report['id']}", "subtype": "read", "agent": gp.fhir_user}, token, "the doctor's read")
    assert aud.patients(ev) == {patient.fhir_user} and ev["action"] == "R", ev
    assert any(a.get("network", {}).get("address") for a in ev["agent"]), "from where: the reader's address"

    ev = exactly_one(audit, {"entity": f"Consent/{grant['id']}"}, token, "the consent grant")
    assert aud.patients(ev) == {patient.fhir_user} and ev["action"] == "C", ev

    ev = exactly_one(audit, {"patient": patient.fhir_user, "type": "110113"}, token, "the break-glass", lambda e: bg.json()["id"] in json.dumps(e))
    assert aud.is_break_glass(ev) and emergency.fhir_user in agent_refs(ev), ev

    # The patient finds the same events in their own view (their login, the upload, the read, the grant, the break-glass).
    mine = {e["id"] for e in audit.events({"patient": patient.fhir_user}, patient.token)}
    upload = audit.events({"entity": f"DiagnosticReport/{report['id']}", "subtype": "create"}, token)[0]
    assert upload["id"] in mine and ev["id"] in mine, "the patient's view lacks events about them"


def test_patients_see_who_read_their_reports_and_nothing_else(audit, records, consent, actors, admin, users):
    gp, emergency = actors.doctor(), actors.doctor()
    a, b = actors.patient(gp=gp), actors.patient(gp=gp)
    ra, rb = final_report(records, gp, a), final_report(records, gp, b)
    assert records.read("DiagnosticReport", ra["id"], gp.token).status_code == 200
    assert records.read("DiagnosticReport", rb["id"], gp.token).status_code == 200
    assert consent.break_glass(emergency.token, a.fhir_user, REASON).status_code == 201
    cl.wait_until(lambda: cl.readable(records, "DiagnosticReport", ra["id"], emergency.token), cl.REVOCATION_BOUND + cl.POLL_SLACK, "break-glass")

    reads = audit.wait_for({"entity": f"DiagnosticReport/{ra['id']}", "subtype": "read"}, a.token, count=2)
    by = {next(iter(agent_refs(e))): e for e in reads}
    assert set(by) >= {gp.fhir_user, emergency.fhir_user}, f"who read the report: {set(by)}"
    assert not aud.is_break_glass(by[gp.fhir_user]), "treatment access flagged as break-glass"
    assert aud.is_break_glass(by[emergency.fhir_user]), "the emergency read is not flagged as break-glass"

    everything = audit.events({}, a.token)
    assert everything and all(a.fhir_user in aud.patients(e) for e in everything), "a patient sees events about someone else"
    assert not any(b.fhir_user in json.dumps(e) or rb["id"] in json.dumps(e) for e in everything)
    other = audit.search({"patient": b.fhir_user}, a.token)
    if other.status_code == 200:
        assert rl.ids(rl.assert_bundle(other)) == [], "another patient's events"
    else:
        rl.assert_outcome(other, 403)

    # The admin sees both patients' events; the other patient's event by id is hidden from a.
    theirs = audit.wait_for({"entity": f"DiagnosticReport/{rb['id']}", "subtype": "read"}, admin.token)
    assert theirs, "the admin does not see b's events"
    rl.assert_outcome(audit.read(theirs[0]["id"], a.token), 404)
    assert audit.read(reads[0]["id"], a.token).status_code == 200

    for who in (gp, actors.technologist(), actors.receptionist()):
        rl.assert_outcome(audit.search({}, who.token), 403)
    rl.assert_outcome(audit.search({}, None), 401)


def anchored(stack) -> tuple[int, int, str] | None:
    """(seq, leaf index, head base64) of the latest anchor, if any."""
    row = al.sql(stack["AUDIT_DATABASE_URL"], "SELECT seq || ' ' || leaf_index || ' ' || encode(head, 'base64') FROM audit_anchors ORDER BY seq DESC LIMIT 1")
    if not row:
        return None
    seq, leaf, head = row.split(" ")
    return int(seq), int(leaf), head


def anchor_covering(stack, seq: int, timeout: float = 40) -> tuple[int, int, str]:
    """Waits until an anchored head covers `seq` (AUDIT_ANCHOR_SECONDS, 10 s by default)."""
    found: list = []
    cl.wait_until(lambda: bool(found.append(anchored(stack)) or (found[-1] and found[-1][0] >= seq)), timeout, f"an anchor covering event {seq}")
    return found[-1]


def test_chain_recomputes_independently_and_its_head_is_in_the_ledger(audit, stack, admin, ledger):
    last = aud.last_seq(stack)
    assert last > 0, "no audit events at all"
    seq, leaf, head = anchor_covering(stack, last)
    rows = aud.chain_rows(stack, 1, seq)
    assert [r[0] for r in rows] == list(range(1, seq + 1)), "the chain has gaps"
    assert aud.recompute(rows, aud.ZERO_HASH) == []
    assert base64.b64encode(rows[-1][2]).decode() == head.strip()

    entry = ledger.entry_bytes(leaf)
    expected = {"v": 1, "type": "audit-chain-head", "size": seq, "head": base64.b64encode(rows[-1][2]).decode()}
    assert entry == rfc8785.dumps(expected), f"the ledger's entry {leaf}: {entry!r}"
    # Each stored event is the AuditEvent as served, with its chain position as id.
    served = audit.read(str(seq), admin.token)
    assert served.status_code == 200 and rfc8785.dumps(served.json()).decode() == rows[-1][1]

    answer = audit.verify(admin.token)
    assert answer.status_code == 200, rl.describe(answer)
    report = answer.json()
    assert report["valid"] is True and not report["problems"], report
    assert report["checked"] >= seq


def test_only_admins_verify_the_chain(audit, actors):
    for who in (actors.doctor(), actors.patient()):
        assert_problem(audit.verify(who.token), 403, who.name)
    assert_problem(audit.verify(None), 401)
    assert_problem(audit.verify(actors.admin().token, **{"from": "x"}), 400)


class Tamper:
    """Changes audit rows behind the service, as an attacker with database access could, and
    puts them back exactly (the rest of the run shares this chain)."""

    def __init__(self, stack):
        self.url = stack["AUDIT_DATABASE_URL"]
        self.backup = f"tamper_{uuid.uuid4().hex[:8]}"

    def save(self, first: int, last: int) -> None:
        al.sql(self.url, f"CREATE TABLE {self.backup} AS SELECT * FROM audit_events WHERE seq BETWEEN {first} AND {last}")

    def run(self, statement: str) -> None:
        al.tamper(self.url, statement)

    def restore(self) -> None:
        self.run(f"DELETE FROM audit_events WHERE seq IN (SELECT seq FROM {self.backup}); "
                 f"INSERT INTO audit_events SELECT * FROM {self.backup}; DROP TABLE {self.backup}")  # fmt: skip


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def problems_in(audit, token, first: int, last: int) -> list[dict]:
    r = audit.verify(token, **{"from": first, "to": last})
    assert r.status_code == 200, rl.describe(r)
    report = r.json()
    assert report["valid"] is (not report["problems"]), report
    return report["problems"]


def test_tampering_with_any_row_is_detected(audit, stack, admin, records, actors):
    gp = actors.doctor()
    patient = actors.patient(gp=gp)
    report = final_report(records, gp, patient)
    for _ in range(4):
        assert records.read("DiagnosticReport", report["id"], gp.token).status_code == 200
    audit.wait_for({"entity": f"DiagnosticReport/{report['id']}", "subtype": "read"}, admin.token, count=4)
    seq = anchor_covering(stack, aud.last_seq(stack))[0]
    k, first = seq - 3, max(1, seq - 5)
    assert k >= 1
    token = admin.token
    assert problems_in(audit, token, first, seq) == [], "the chain is already broken"
    rows = {r[0]: r for r in aud.chain_rows(stack, k, k + 1)}

    def reported(problems: list[dict], *seqs: int) -> bool:
        return any(p.get("seq") in seqs for p in problems)

    cases = []
    t = Tamper(stack)
    # 1. An event edited (say, a failed access made to look successful): its hash no longer chains.
    edited = json.loads(rows[k][1])
    edited["outcomeDesc"] = "edited by an attacker"
    t.save(k, k)
    t.run(f"UPDATE audit_events SET event = {literal(rfc8785.dumps(edited).decode())} WHERE seq = {k}")
    cases.append(("edited", problems_in(audit, token, first, seq), (k,)))
    t.restore()
    # 2. An event deleted: a gap.
    t = Tamper(stack)
    t.save(k, k)
    t.run(f"DELETE FROM audit_events WHERE seq = {k}")
    cases.append(("deleted", problems_in(audit, token, first, seq), (k, k + 1)))
    t.restore()
    # 3. Two events swapped (texts and hashes): the order is part of the chain.
    t = Tamper(stack)
    t.save(k, k + 1)
    t.run(f"UPDATE audit_events SET event = {literal(rows[k + 1][1])}, hash = '\\x{rows[k + 1][2].hex()}' WHERE seq = {k}; "
          f"UPDATE audit_events SET event = {literal(rows[k][1])}, hash = '\\x{rows[k][2].hex()}' WHERE seq = {k + 1}")  # fmt: skip
    cases.append(("swapped", problems_in(audit, token, first, seq), (k, k + 1)))
    t.restore()
    # 4. An edit with every later hash recomputed: the chain is consistent in itself, but the
    #    head anchored in the ledger contradicts it.
    t = Tamper(stack)
    t.save(k, seq)
    previous = aud.stored_hash(stack, k - 1)
    statements = []
    for s, text, _ in aud.chain_rows(stack, k, seq):
        text = rfc8785.dumps(edited).decode() if s == k else text
        previous = aud.link(previous, text)
        statements.append(f"UPDATE audit_events SET event = {literal(text)}, hash = '\\x{previous.hex()}' WHERE seq = {s}")
    t.run("; ".join(statements))
    forged = problems_in(audit, token, k, seq)
    cases.append(("rewritten and rehashed", forged, (seq,)))
    t.restore()

    failures = [f"{name}: {problems}" for name, problems, where in cases if not reported(problems, *where)]
    assert not failures, "tampering not reported where it happened:\n" + "\n".join(failures)
    assert any("anchor" in p.get("problem", "").lower() for p in forged), forged
    assert problems_in(audit, token, first, seq) == [], "the restored chain does not verify"
