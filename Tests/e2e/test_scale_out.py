"""Scale-out (issue 8): `deploy/local/stack up --replicas 2` runs two instances of every service
on the same databases and lists them in stack.env (IDENTITY_URLS, RECORDS_URLS, CONSENT_URLS,
AUDIT_URLS, LEDGER_URLS). A bounded load spread over both instances of each service shows no
duplicates and a single consistent ledger:

- reports created alternating records instances (with tokens from the other identity instance)
  exist once, read alike on both instances, and every version is anchored in the ledger once;
- logins alternating identity instances each open one session, audited once, and their tokens
  and refresh tokens work on every instance (a reused refresh token is caught across instances);
- ledger appends sent to both ledger instances with the same idempotency keys give each key one
  index; checkpoints from both instances are signed by the log key, agree on the root at equal
  sizes and are consistent (ledgerlib's RFC 9162 verifier and the Go oracle);
- consents granted through both consent instances exist once and take effect in records;
- audit holds one hash chain, each event once, read alike on both audit instances.

Fails (never skips) when stack.env lists fewer than two instances of a service. Peers reach
each other's first instance only (*_URL); the load reaches both instances from outside.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import anchorlib as al
import auditlib as aud
import consentlib as cl
import identitylib as idl
import ledgerlib
import pytest
import recordslib as rl
import requests
import rfc8785
from e2e_support import Ledger, make_items, run_tlogcheck

SERVICES = ("identity", "records", "consent", "audit", "ledger")
REPORTS = 120  # created alternating records instances; every other one approved on the other instance
LOGINS = 40  # alternating identity instances
LEDGER_KEYS = 200  # each key sent to both ledger instances
LEDGER_BATCH = 10
GRANTS = 6  # consents, alternating consent instances
WORKERS = 8
LOAD_SECONDS = 120  # bound of each load phase
ORACLE_SUMMARY = re.compile(r"^ok: (\d+) checkpoints, (\d+) inclusion, (\d+) consistency, (\d+) tampered rejected$")


@pytest.fixture(scope="module")
def instances(stack) -> dict[str, list[str]]:
    """Every service's instance URLs from stack.env (*_URLS); fails unless each has two or more."""
    out = {}
    for name in SERVICES:
        key = f"{name.upper()}_URLS"
        urls = [u.strip().rstrip("/") for u in stack.get(key, "").split(",") if u.strip()]
        if len(urls) < 2:
            pytest.fail(f"{key}={stack.get(key)!r} in STACK_ENV: scale-out needs two instances of every service "
                        "(deploy/local/stack up --replicas 2)", pytrace=False)  # fmt: skip
        assert len(set(urls)) == len(urls), f"{key} lists an instance twice: {urls}"
        assert urls[0] == stack[f"{name.upper()}_URL"].rstrip("/"), f"{key} must start with {name.upper()}_URL"
        for url in urls:
            try:
                r = requests.get(url + "/health/ready", timeout=10)
            except requests.RequestException as e:
                pytest.fail(f"{name} instance {url} is not reachable: {e}", pytrace=False)
            assert r.status_code == 200, f"{name} instance {url} is not ready: {r.status_code} {r.text[:200]}"
        out[name] = urls
    return out


def at(stack: dict[str, str], name: str, url: str) -> dict[str, str]:
    """The stack as seen through one instance of `name` (the clients read *_URL)."""
    return {**stack, f"{name.upper()}_URL": url}


def bounded(work: Callable, items: Iterable, what: str) -> list:
    """Runs `work` over `items` on WORKERS threads, all done within LOAD_SECONDS."""
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(work, items, timeout=LOAD_SECONDS))
    print(f"{what}: {len(results)} in {time.monotonic() - started:.1f}s")
    return results


@pytest.fixture(scope="module")
def recs(stack, instances) -> list[rl.Records]:
    return [rl.Records(stack, instance=u) for u in instances["records"]]


@pytest.fixture(scope="module")
def idents(instances) -> list[idl.Identity]:
    return [idl.Identity(u) for u in instances["identity"]]


@pytest.fixture(scope="module")
def audits(stack, instances) -> list[aud.Audit]:
    return [aud.Audit(stack, instance=u) for u in instances["audit"]]


def same_on_every_audit(audits: list[aud.Audit], params: dict, token: str, count: int,
                        where: Callable[[dict], bool] = lambda e: True) -> list[dict]:  # fmt: skip
    """The events `params` and `where` select, once `count` of them arrived, after checking that
    every audit instance answers `params` alike."""
    deadline = time.monotonic() + aud.DELIVERY_WAIT
    while True:
        found = audits[0].events(params, token)
        if sum(1 for e in found if where(e)) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    ids = sorted(e["id"] for e in found)
    for k, other in enumerate(audits[1:], start=2):
        assert sorted(e["id"] for e in other.events(params, token)) == ids, f"audit instance {k} answers {params} otherwise"
    return [e for e in found if where(e)]


def report_refs(event: dict) -> set[str]:
    """The DiagnosticReport ids an event names (without version)."""
    refs = (e.get("what", {}).get("reference", "") for e in event.get("entity", []))
    return {r.split("/")[1] for r in refs if r.startswith("DiagnosticReport/")}


def test_every_service_runs_two_instances(instances):
    assert all(len(urls) >= 2 for urls in instances.values()), instances


def test_reports_spread_over_records_instances_exist_once_and_are_anchored_once(stack, recs, idents, audits, actors, admin):
    doctor, tech = actors.doctor(), actors.technologist()
    patient = actors.patient(gp=doctor)
    # A token from each identity instance; each is used on the other records instance.
    tech_tokens = [i.login_tokens(tech.account.username, tech.account.password).access_token for i in idents]
    doctor_tokens = [i.login_tokens(doctor.account.username, doctor.account.password).access_token for i in idents]
    system = rl.new_system("scale")

    def create(i: int) -> dict:
        k = i % 2
        r = recs[k].create("DiagnosticReport", rl.report_body(patient.fhir_user, system=system, value=f"r{i}"), tech_tokens[1 - k])
        return rl.assert_resource(r, 201, "DiagnosticReport", version=1, what=f"report {i} on records instance {k + 1}")

    created = bounded(create, range(REPORTS), "reports created on alternating records instances")
    ids = [body["id"] for body in created]
    assert len(set(ids)) == REPORTS, "two creates answered the same id"

    def approve(i: int) -> dict:
        k = (i + 1) % 2  # the instance that did not create it
        r = recs[k].update("DiagnosticReport", ids[i], {**created[i], "status": "final"}, doctor_tokens[1 - k], if_match=1)
        return rl.assert_resource(r, 200, "DiagnosticReport", version=2, what=f"approving report {i} on records instance {k + 1}")

    approved = bounded(approve, range(0, REPORTS, 2), "reports approved on the other records instance")
    current = {body["id"]: body for body in created} | {body["id"]: body for body in approved}

    def read_everywhere(rid: str) -> None:
        for k, records in enumerate(recs):
            body = records.must_read("DiagnosticReport", rid, doctor_tokens[k], f"DiagnosticReport/{rid} on records instance {k + 1}")
            assert body == current[rid], f"records instance {k + 1} serves another DiagnosticReport/{rid}"

    bounded(read_everywhere, ids, "reports read on both records instances")

    # Each instance finds every report once (the patient has no others).
    for k, records in enumerate(recs):
        first = records.must_search("DiagnosticReport", {"patient": patient.fhir_user, "_count": "50", "_total": "accurate"}, doctor_tokens[k])
        assert first["total"] == REPORTS, f"records instance {k + 1} counts {first['total']} reports"
        found = [rid for page in records.pages(first, doctor_tokens[k]) for rid in rl.ids(page)]
        assert sorted(found) == sorted(ids), f"records instance {k + 1}: {len(found)} results, {len(set(found))} distinct"

    # Every version anchored once, whichever records instance wrote it and whichever delivered it.
    versions = REPORTS + len(approved)
    deadline = time.monotonic() + al.VERIFY_WAIT * 2
    while al.anchored_counts(stack, ids) != (versions, versions):
        assert time.monotonic() < deadline, f"anchored: {al.anchored_counts(stack, ids)} of {versions}"
        time.sleep(0.2)
    al.each_in_ledger_once(stack, ids, versions)
    for k, rid in enumerate(ids[:4]):
        p = al.wait_verified(recs[k % 2], doctor_tokens[k % 2], "DiagnosticReport", rid)
        assert p["result"] == ["verified"], p

    # Audit: each create and each approval once, alike on both audit instances.
    token = admin.token
    for what, expected in (("create", ids), ("approve", ids[::2])):
        events = same_on_every_audit(audits, {"patient": patient.fhir_user, "subtype": what}, token, len(expected), report_refs)
        per_report: dict[str, int] = defaultdict(int)
        for event in events:
            for rid in report_refs(event):
                per_report[rid] += 1
        assert dict(per_report) == {rid: 1 for rid in expected}, f"{what} events per report are not exactly one each"


def test_logins_alternate_identity_instances_and_their_tokens_work_everywhere(idents, recs, audits, actors, admin):
    doctor = actors.doctor()
    user, password = doctor.account.username, doctor.account.password
    logins = bounded(lambda i: idents[i % 2].login_tokens(user, password), range(LOGINS), "logins on alternating identity instances")
    sids = [ts.claims["sid"] for ts in logins]
    assert len(set(sids)) == LOGINS and len({ts.claims["jti"] for ts in logins}) == LOGINS, "two logins share a session or token id"

    def use(i: int) -> None:
        token = logins[i].access_token
        for k, identity in enumerate(idents):
            assert identity.me(token).status_code == 200, f"login {i}'s token refused by identity instance {k + 1}"
        for k, records in enumerate(recs):
            records.must_read("Practitioner", doctor.id, token, f"login {i}'s token on records instance {k + 1}")

    bounded(use, range(LOGINS), "tokens used on every identity and records instance")

    params = {"agent:identifier": f"{aud.USER_SYSTEM}|{doctor.account.id}", "subtype": "110122"}
    events = same_on_every_audit(audits, params, admin.token, LOGINS, lambda e: e.get("outcome") == "0")
    for sid in sids:
        matching = [e for e in events if sid in json.dumps(e)]
        assert len(matching) == 1, f"session {sid}: {len(matching)} login events"

    # A refresh token works once, whichever instance sees it: reuse on the other ends the session.
    first = idents[0].login_tokens(user, password)
    second = idl.token_set(idents[1].refresh(first.refresh_token), "refresh on identity instance 2")
    assert second.claims["sid"] == first.claims["sid"]
    idl.assert_oauth_error(idents[0].refresh(first.refresh_token), "invalid_grant")
    idl.assert_oauth_error(idents[1].refresh(second.refresh_token), "invalid_grant")


def test_ledger_appends_via_both_instances_give_each_key_one_index_and_one_log(stack, instances, uniq, tmp_path):
    ledgers = [Ledger(at(stack, "ledger", u)) for u in instances["ledger"]]
    items = make_items(uniq("scale"), LEDGER_KEYS)
    batches = [items[i : i + LEDGER_BATCH] for i in range(0, LEDGER_KEYS, LEDGER_BATCH)]
    # Every batch goes to both instances (the same keys twice), in a shuffled order, some waiting for a checkpoint.
    jobs = [(n, k, n % 4 == 0) for n in range(len(batches)) for k in range(len(ledgers))]
    random.Random(8).shuffle(jobs)
    notes: list[str] = []

    def append(job: tuple[int, int, bool]) -> list[tuple[str, int]]:
        n, k, wait = job
        body = ledgers[k].append(batches[n], wait=wait)
        if wait:
            notes.append(body["checkpoint"])
        return [(e["idempotencyKey"], e["index"]) for e in body["entries"]]

    answers = bounded(append, jobs, "ledger batches, each sent to both ledger instances")
    index_of: dict[str, set[int]] = defaultdict(set)
    for answer in answers:
        for key, index in answer:
            index_of[key].add(index)
    assert all(len(v) == 1 for v in index_of.values()), {k: v for k, v in index_of.items() if len(v) != 1}
    index = {key: v.pop() for key, v in index_of.items()}
    assert len(index) == LEDGER_KEYS and len(set(index.values())) == LEDGER_KEYS, "two keys share an index"

    # The final checkpoint from each instance: same signer, same root at the same size.
    top = max(index.values()) + 1
    finals = []
    for k, ledger in enumerate(ledgers):
        deadline = time.monotonic() + 30
        while (cp := ledger.checkpoint()).size < top:
            assert time.monotonic() < deadline, f"ledger instance {k + 1}: no checkpoint covering {top} entries"
            time.sleep(0.1)
        finals.append(cp)
    notes += [cp.text for cp in finals]
    checkpoints = {}
    for text in notes:
        cp = ledgers[0].verify_checkpoint(text)  # signed by LEDGER_VKEY, else this fails
        assert checkpoints.setdefault(cp.size, cp).root == cp.root, f"two roots for size {cp.size}"
    sizes = sorted(checkpoints)
    final = checkpoints[sizes[-1]]

    # Every entry: the same bytes and inclusion at the final size from either instance.
    inclusion = []
    for n, item in enumerate(items):
        ledger = ledgers[n % len(ledgers)]
        data = ledger.entry_bytes(index[item["idempotencyKey"]])
        assert data == rfc8785.dumps(item["entry"]), f"entry {index[item['idempotencyKey']]} differs"
        proof = ledger.inclusion(index[item["idempotencyKey"]], final.size)
        assert ledgerlib.verify_inclusion(index[item["idempotencyKey"]], final.size, ledgerlib.leaf_hash(data), proof, final.root)
        inclusion.append({"checkpoint": len(sizes) - 1, "index": index[item["idempotencyKey"]], "leafData": ledgerlib.b64(data),
                          "hashes": [ledgerlib.b64(h) for h in proof]})  # fmt: skip
    # Each checkpoint consistent with the next, proofs from alternating instances.
    consistency = []
    for n, (a, b) in enumerate(zip(sizes, sizes[1:])):
        proof = ledgers[n % len(ledgers)].consistency(a, b)
        assert ledgerlib.verify_consistency(a, b, proof, checkpoints[a].root, checkpoints[b].root), f"{a} -> {b} inconsistent"
        consistency.append({"from": n, "to": n + 1, "hashes": [ledgerlib.b64(h) for h in proof]})

    doc = {"vkey": stack["LEDGER_VKEY"], "origin": stack["LEDGER_ORIGIN"], "checkpoints": [checkpoints[s].text for s in sizes],
           "inclusion": inclusion, "consistency": consistency, "tampered": []}  # fmt: skip
    path = tmp_path / "tlogcheck-input.json"
    path.write_text(json.dumps(doc, indent=1))
    p = run_tlogcheck(path)
    assert p.returncode == 0, f"tlogcheck exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-6000:]}"
    m = ORACLE_SUMMARY.match(p.stdout.strip().splitlines()[-1])
    assert m and tuple(map(int, m.groups())) == (len(sizes), len(inclusion), len(consistency), 0), p.stdout
    print(f"ledger: {LEDGER_KEYS} keys sent twice, {len(sizes)} checkpoints up to size {final.size} verified by the Go oracle")


def test_consents_through_both_instances_exist_once_and_take_effect(stack, instances, recs, audits, actors, admin):
    consents = [cl.Consent(at(stack, "consent", u)) for u in instances["consent"]]
    gp = actors.doctor()
    patient = actors.patient(gp=gp)
    report = recs[0].must_create("DiagnosticReport", rl.report_body(patient.fhir_user, status="final"), gp.token, "a final report")
    others = [actors.doctor() for _ in range(GRANTS)]
    grants = bounded(lambda i: consents[i % 2].create(cl.consent_body(patient.fhir_user, others[i].fhir_user), patient.token),
                     range(GRANTS), "consents on alternating consent instances")  # fmt: skip
    assert len({g["id"] for g in grants}) == GRANTS
    for k, consent in enumerate(consents):
        bundle = rl.assert_bundle(consent.search({"patient": patient.fhir_user, "_count": "50"}, patient.token))
        assert sorted(rl.ids(bundle)) == sorted(g["id"] for g in grants), f"consent instance {k + 1}"

    def reads(i: int) -> bool:
        return cl.readable(recs[(i + 1) % 2], "DiagnosticReport", report["id"], others[i].token)

    for i in range(GRANTS):
        cl.wait_until(lambda: reads(i), cl.REVOCATION_BOUND + cl.POLL_SLACK, f"grant {i}")
    # Revoked through the instance that did not grant it.
    for i in range(0, GRANTS, 2):
        consents[(i + 1) % 2].revoke(grants[i], patient.token)
    for i in range(GRANTS):
        if i % 2 == 0:
            cl.wait_until(lambda: not reads(i), cl.REVOCATION_BOUND + cl.POLL_SLACK, f"revocation {i}")
        else:
            assert reads(i), f"grant {i} stopped working though it was not revoked"

    for n, grant in enumerate(grants):
        events = same_on_every_audit(audits, {"entity": f"Consent/{grant['id']}"}, admin.token, 1 if n % 2 else 2)
        assert sorted(e["action"] for e in events) == (["C"] if n % 2 else ["C", "U"]), f"Consent/{grant['id']}: {events}"


def test_audit_holds_one_chain_each_event_once(stack, audits, admin):
    last = aud.last_seq(stack)
    rows = aud.chain_rows(stack, 1, last)
    assert [r[0] for r in rows] == list(range(1, last + 1)), "the chain has gaps or repeats"
    assert aud.recompute(rows, aud.ZERO_HASH) == []
    keys = al.sql(stack["AUDIT_DATABASE_URL"], f"SELECT count(*) || ' ' || count(DISTINCT idempotency_key) FROM audit_events WHERE seq <= {last}")
    assert keys == f"{last} {last}", f"events and distinct idempotency keys: {keys}"
    for k, audit in enumerate(audits):
        r = audit.verify(admin.token)
        assert r.status_code == 200, rl.describe(r)
        assert r.json()["valid"] is True and not r.json()["problems"], f"audit instance {k + 1}: {r.json()}"
    # Both audit instances anchor the chain: each size is in the ledger at most once, where audit says.
    heads = al.sql(stack["LEDGER_DATABASE_URL"],
                   "SELECT idx || ' ' || translate(encode(data, 'base64'), E'\\n', '') FROM leaves WHERE data LIKE '{\"head\":%'")  # fmt: skip
    leaf_of_size: dict[int, int] = {}
    for line in heads.splitlines():
        idx, data = line.split(" ", 1)
        entry = json.loads(base64.b64decode(data))
        if entry.get("type") == "audit-chain-head":
            assert entry["size"] not in leaf_of_size, f"chain size {entry['size']} anchored twice"
            leaf_of_size[entry["size"]] = int(idx)
    anchors = al.sql(stack["AUDIT_DATABASE_URL"], "SELECT seq || ' ' || leaf_index FROM audit_anchors").splitlines()
    assert anchors, "the chain was never anchored"
    for line in anchors:
        seq, leaf = map(int, line.split())
        assert leaf_of_size.get(seq) == leaf, f"anchor of size {seq} at leaf {leaf}, the ledger has it at {leaf_of_size.get(seq)}"
