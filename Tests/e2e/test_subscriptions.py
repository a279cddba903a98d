"""FHIR Subscriptions in records (issue 9), black-box: real services, a real HTTP receiver in
the test (subscriptionlib.Receiver), joserfc and PyJWT for the signatures, websocket-client
for the R4 websocket channel.

- a subscriber (doctor, patient, untrusted EHR with consent, trusted EHR) gets each matching
  report version once (event numbers 1, 2, 3… per subscription; repeats droppable by number),
  in the three payload contents, full-resource exactly as vread serves it;
- nothing it may not read (unassigned patients, preliminary reports for patients), nothing its
  criteria do not match, nothing after its consent is revoked or its break-glass ended;
- receiver down or answering 503 → everything delivered in order once it is back; repeated
  failures → `error` with the reason, PUT `active` → the pending events go out;
- records killed mid-burst → every written report delivered;
- every signature verified by two JOSE libraries, a tampered body rejected by both;
- bad input, refusals, CRUD, $status, an AuditEvent per delivery, the websocket channel on both
  records instances.

"Nothing arrived" is shown by a sentinel: a matching report written after the ones that must not
arrive; events of one subscription go out in order, so once the sentinel is there, anything
written before it has been delivered or skipped.
"""

from __future__ import annotations

import socket
import threading
import time

import auditlib as aud
import consentlib as cl
import pytest
import recordslib as rl
import requests
import subscriptionlib as sl
import websocket
from e2e_support import ready, safe_free_port, service_running, service_token, stack_command
from joserfc.jwk import OKPKey

CATEGORY_SYSTEM = cl.CATEGORY_SYSTEM
LAB, RAD = (CATEGORY_SYSTEM, "LAB"), (CATEGORY_SYSTEM, "RAD")
REASON = "e2e subscriptions: unconscious patient, history needed now"
SUBSCRIBERS = ("doctor", "patient", "ehr_consented", "ehr_trusted")
# The stack's retry settings (deploy/local/test): base 200 ms doubling to 2 s, 10 failures → error
# after about 15 s.
ERROR_WAIT = 45.0


@pytest.fixture
def subs(records):
    """The Subscription interactions; what a test subscribed is deleted after it."""
    client = sl.Subscriptions(records)
    yield client
    client.delete_created()


@pytest.fixture(scope="module")
def jwks(records) -> dict:
    return sl.records_jwks(records)


@pytest.fixture(scope="module")
def consent(stack) -> cl.Consent:
    return cl.Consent(stack)


@pytest.fixture
def receiver():
    with sl.Receiver() as r:
        yield r


class Care:
    """A patient, their doctor, a technologist, another doctor's patient, and a code system
    unique to the test (so criteria match only this test's reports)."""

    def __init__(self, records: rl.Records, actors: rl.Actors):
        self.records = records
        self.gp = actors.doctor()
        self.patient = actors.patient(gp=self.gp)
        self.tech = actors.technologist()
        self.other_gp = actors.doctor()
        self.other = actors.patient(gp=self.other_gp)
        self.system = rl.new_system("code")

    def code(self, c: str = "C") -> str:
        return f"{self.system}|{c}"

    def report(self, *, status: str = "final", code: str = "C", patient: rl.Actor | None = None, author: rl.Actor | None = None,
               category: tuple[str, str] | None = None, **kw) -> dict:  # fmt: skip
        """A report of the test's code system, final ones by the patient's doctor, others by the technologist."""
        patient = patient or self.patient
        author = author or ((self.gp if patient is self.patient else self.other_gp) if status == "final" else self.tech)
        body = rl.report_body(patient.fhir_user, status=status, code=(self.system, code), category=category, **kw)
        return self.records.must_create("DiagnosticReport", body, author.token, f"a {status} report")

    def approve(self, report: dict) -> dict:
        return self.records.must_update("DiagnosticReport", {**report, "status": "final"}, self.gp.token, if_match=1)


@pytest.fixture
def care(records, actors) -> Care:
    return Care(records, actors)


def grant_and_wait(records, consent, patient: rl.Actor, grantee: rl.Actor) -> dict:
    """`patient` grants `grantee` access to all its reports; returns once records honours it."""
    grant = consent.create(cl.consent_body(patient.fhir_user, grantee.fhir_user), patient.token)
    cl.wait_until(lambda: cl.readable(records, "Patient", patient.id, grantee.token), cl.REVOCATION_BOUND + cl.POLL_SLACK,
                  f"{patient.fhir_user}'s grant reaching records")  # fmt: skip
    return grant


def expect_events(receiver, records, sub: dict, reader: rl.Actor, content: str, expected: list[tuple[str, int]], jwks: dict,
                  timeout: float = sl.DELIVERY_WAIT) -> list[sl.Note]:  # fmt: skip
    """Exactly the `expected` report versions, as events 1..n in this order, each notification
    as the contract says and every POST (repeats and refused ones too) signed."""
    notes = sl.wait_for_events(receiver, sub["id"], len(expected), timeout)
    got = sl.delivered(receiver, sub["id"])
    assert sorted(got) == list(range(1, len(expected) + 1)), (
        f"Subscription/{sub['id']}: events {[(k, got[k].focus) for k in sorted(got)]}, expected {len(expected)}: {expected}"
    )
    for n in notes:
        sl.check_note(n, records, sub["id"], content, reader.token)
    if content != "empty":
        assert [sl.focus_of(n, records) for n in notes] == expected, (
            f"Subscription/{sub['id']} delivered {[sl.focus_of(n, records) for n in notes]}, expected {expected}"
        )
    for hit in receiver.hits(sub["id"]):
        sl.verify_signature(hit, jwks)
    return notes


def events_by_focus(p: dict, records: rl.Records) -> dict[tuple[str, int], dict]:
    out = {}
    for e in sl.status_events(p):
        if "focus" not in e:
            continue  # only delivered events name their report
        rid, _, vid = (e.get("focus") or "").removeprefix(f"{records.base}/DiagnosticReport/").partition("/_history/")
        out[(rid, int(vid))] = e
    return out


def settled(p: dict, count: int) -> bool:
    """At least `count` events in $status, none of them still pending."""
    events = sl.status_events(p)
    return len(events) >= count and all(e["state"] != "pending" for e in events)


def skipped(p: dict) -> int:
    """How many of $status's events were skipped (they name no report)."""
    return len([e for e in sl.status_events(p) if e["state"] == "skipped"])


def check_status_shape(p: dict, records: rl.Records, sub_id: str, status: str = "active") -> list[dict]:
    """$status as the backport's SubscriptionStatus (R4 Parameters) has it; returns its events."""
    assert sl.value(p["subscription"][0]) == f"{records.base}/Subscription/{sub_id}", p["subscription"]
    assert sl.status_code(p) == status, p["status"]
    assert sl.value(p["type"][0]) == "query-status", p["type"]
    since = sl.value(p["events-since-subscription-start"][0])
    assert isinstance(since, str) and since.isdigit(), since
    events = sl.status_events(p)
    assert len(events) <= 20, f"{len(events)} notification-events"
    stamps = [rl.instant(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps, reverse=True), f"notification-events not newest first: {stamps}"
    for e in events:
        assert e["state"] in ("pending", "delivered", "skipped"), e
        assert isinstance(e["attempts"], int) and e["attempts"] >= 0, e
        if e["state"] != "delivered":
            assert "focus" not in e, f"an event not delivered (yet) names its report: {e}"
        else:
            assert e["focus"].startswith(f"{records.base}/DiagnosticReport/") and "/_history/" in e["focus"], e
        if e["state"] == "delivered":
            assert e.get("event-number", "").isdigit() and e["attempts"] >= 1, e
        if e["state"] == "skipped":
            assert "event-number" not in e, f"a skipped event has an event number: {e}"
    return events


def assert_deleted(r: requests.Response) -> None:
    """A delete's answer: the API note says 200 with an OperationOutcome "like records' other
    deletes", which answer 204; either is taken."""
    assert r.status_code in (200, 204), rl.describe(r)
    if r.status_code == 200:
        assert r.json()["resourceType"] == "OperationOutcome", rl.describe(r)


# --------------------------------------------------------------------------- delivery


@pytest.mark.parametrize("content", sl.CONTENTS)
@pytest.mark.parametrize("who", SUBSCRIBERS)
def test_a_subscriber_gets_each_matching_report_once(who, content, care, records, consent, actors, subs, receiver, jwks, request):
    if who == "doctor":
        subscriber = care.gp
    elif who == "patient":
        subscriber = care.patient
    elif who == "ehr_consented":
        subscriber = actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False, name="E2E subscribing EHR")
        grant_and_wait(records, consent, care.patient, subscriber)
    else:
        subscriber = request.getfixturevalue("ehr_trusted")
    # Patients and consented EHRs may not read preliminary reports: their criteria match them,
    # delivery skips them. The doctor and the trusted EHR ask for final reports only.
    released_only = who in ("patient", "ehr_consented")
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&code={care.code()}" + ("" if released_only else "&status=final")
    sub = subs.must_create(sl.subscription_body(criteria, receiver.url(), content=content), subscriber.token)

    r1 = care.report()  # matches
    r2 = care.report(status="preliminary")  # preliminary: not matched, or matched and skipped
    care.report(code="OTHER")  # another code
    care.report(patient=care.other)  # another patient
    care.approve(r2)  # version 2, final: matches
    r4 = care.report(category=LAB)  # the sentinel
    expected = [(r1["id"], 1), (r2["id"], 2), (r4["id"], 1)]
    expect_events(receiver, records, sub, subscriber, content, expected, jwks)

    p = subs.wait_status(sub["id"], subscriber.token, lambda p: len([e for e in sl.status_events(p) if e["state"] == "delivered"]) >= 3,
                         "three delivered events in $status")  # fmt: skip
    events = check_status_shape(p, records, sub["id"])
    assert sl.value(p["events-since-subscription-start"][0]) == "3", p
    by_focus = events_by_focus(p, records)
    for number, key in enumerate(expected, 1):
        assert by_focus[key]["state"] == "delivered" and by_focus[key]["event-number"] == str(number), by_focus.get(key)
    assert skipped(p) == (1 if released_only else 0), f"skipped events ({events})"


def test_unpinned_criteria_deliver_only_what_the_subscriber_may_read(care, records, actors, subs, receiver, jwks):
    """A doctor gets its own patient's reports only, a patient their own released ones, an
    untrusted EHR without consent nothing; what they may not read is skipped, never sent."""
    criteria = f"DiagnosticReport?code={care.code()}"
    stranger = actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False, name="E2E EHR without consent")
    doctor = subs.must_create(sl.subscription_body(criteria + "&status=final", receiver.url("/doctor")), care.gp.token)
    patient = subs.must_create(sl.subscription_body(criteria, receiver.url("/patient"), content="id-only"), care.patient.token)
    ehr = subs.must_create(sl.subscription_body(criteria, receiver.url("/ehr")), stranger.token)

    q = care.report(patient=care.other)  # another doctor's patient
    prelim = care.report(status="preliminary")
    sentinel = care.report()
    expect_events(receiver, records, doctor, care.gp, "full-resource", [(sentinel["id"], 1)], jwks)
    expect_events(receiver, records, patient, care.patient, "id-only", [(sentinel["id"], 1)], jwks)

    # Q's report matched the doctor's criteria and was skipped; the patient's skipped Q's and the preliminary one.
    p = subs.wait_status(doctor["id"], care.gp.token, lambda p: skipped(p) >= 1, "Q's report skipped in the doctor's $status")
    assert skipped(p) == 1 and set(events_by_focus(p, records)) == {(sentinel["id"], 1)}, sl.status_events(p)
    p = subs.wait_status(patient["id"], care.patient.token, lambda p: skipped(p) >= 2, "two skipped events in the patient's $status")
    assert skipped(p) == 2 and set(events_by_focus(p, records)) == {(sentinel["id"], 1)}, sl.status_events(p)

    # The EHR may read none of the three: each is skipped and nothing is sent.
    p = subs.wait_status(ehr["id"], stranger.token, lambda p: skipped(p) >= 3, "the EHR's events skipped")
    assert skipped(p) == 3 and events_by_focus(p, records) == {}, sl.status_events(p)
    assert sl.value(p["events-since-subscription-start"][0]) == "0", p
    assert receiver.hits(ehr["id"]) == [], f"an EHR without consent was sent {len(receiver.hits(ehr['id']))} notifications"
    assert {h.path for h in receiver.hits()} <= {"/doctor", "/patient"}, {h.path for h in receiver.hits()}


def test_criteria_match_by_category_code_and_status(care, records, subs, receiver, jwks):
    base = f"DiagnosticReport?patient={care.patient.fhir_user}"
    made = {
        "category": subs.must_create(sl.subscription_body(f"{base}&category={CATEGORY_SYSTEM}|LAB&code={care.system}|", receiver.url(), content="id-only"), care.gp.token),
        "code": subs.must_create(sl.subscription_body(f"{base}&code={care.code('C')}", receiver.url(), content="id-only"), care.gp.token),
        "status": subs.must_create(sl.subscription_body(f"{base}&status=final&code={care.code('C')},{care.code('D')}", receiver.url(), content="id-only"), care.gp.token),
        "all": subs.must_create(sl.subscription_body(f"{base}&category=LAB&status=final&code={care.code('C')}", receiver.url(), content="id-only"), care.gp.token),
    }  # fmt: skip
    a = care.report(code="C", category=RAD)
    b = care.report(status="preliminary", code="D", category=LAB)
    c = care.report(code="D", category=LAB)
    d = care.report(code="C", category=LAB)  # the sentinel: matches all four
    want = {
        "category": [b, c, d],
        "code": [a, d],
        "status": [a, c, d],
        "all": [d],
    }
    for name, sub in made.items():
        expect_events(receiver, records, sub, care.gp, "id-only", [(r["id"], 1) for r in want[name]], jwks)


def test_nothing_after_the_consent_is_revoked(care, records, consent, actors, subs, receiver, jwks):
    ehr = actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False, name="E2E EHR losing consent")
    grant = grant_and_wait(records, consent, care.patient, ehr)
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&status=final", receiver.url()), ehr.token)
    first = care.report()
    expect_events(receiver, records, sub, ehr, "full-resource", [(first["id"], 1)], jwks)

    consent.revoke(grant, care.patient.token)
    after = care.report()  # written at once: delivery asks consent afresh
    p = subs.wait_status(sub["id"], ehr.token, lambda p: settled(p, 2),
                         "the report after the revocation handled")  # fmt: skip
    assert skipped(p) == 1 and set(events_by_focus(p, records)) == {(first["id"], 1)}, sl.status_events(p)
    assert sorted(sl.delivered(receiver, sub["id"])) == [1], "a report was sent after the consent was revoked"


def test_break_glass_delivers_until_it_ends(care, records, consent, actors, subs, receiver, jwks):
    emergency = actors.doctor()
    r = consent.break_glass(emergency.token, care.patient.fhir_user, REASON)
    assert r.status_code == 201, rl.describe(r)
    cl.wait_until(lambda: cl.readable(records, "Patient", care.patient.id, emergency.token), cl.REVOCATION_BOUND + cl.POLL_SLACK,
                  "break-glass reaching records")  # fmt: skip
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}", receiver.url(), content="id-only"), emergency.token)
    first = care.report(status="preliminary")  # break-glass opens everything, preliminary too
    expect_events(receiver, records, sub, emergency, "id-only", [(first["id"], 1)], jwks)

    end = consent.json("DELETE", f"/break-glass/{r.json()['id']}", emergency.token)
    assert end.status_code == 200, rl.describe(end)
    after = care.report()
    p = subs.wait_status(sub["id"], emergency.token, lambda p: settled(p, 2),
                         "the report after break-glass ended handled")  # fmt: skip
    assert skipped(p) == 1 and set(events_by_focus(p, records)) == {(first["id"], 1)}, sl.status_events(p)
    assert sorted(sl.delivered(receiver, sub["id"])) == [1]


def test_nothing_is_delivered_after_the_subscriptions_end(care, records, subs, receiver, jwks):
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&status=final"
    end = cl.later(3.0)
    ending = subs.must_create(sl.subscription_body(criteria, receiver.url("/ending"), content="id-only", end=cl.instant(end)), care.gp.token)
    lasting = subs.must_create(sl.subscription_body(criteria, receiver.url("/lasting"), content="id-only"), care.gp.token)
    before = care.report()
    expect_events(receiver, records, ending, care.gp, "id-only", [(before["id"], 1)], jwks)
    time.sleep(max(0.0, (end - rl.now_utc()).total_seconds()) + 0.5)
    after = care.report()
    expect_events(receiver, records, lasting, care.gp, "id-only", [(before["id"], 1), (after["id"], 1)], jwks)
    time.sleep(1.0)  # the ended subscription's turn has come and gone
    assert sorted(sl.delivered(receiver, ending["id"])) == [1], "a report written after the subscription's end was delivered"


# --------------------------------------------------------------------------- failures


def first_arrivals(receiver: sl.Receiver, sub_id: str) -> list[int]:
    """Event numbers in the order they were first answered 2xx."""
    seen: list[int] = []
    for hit in receiver.hits(sub_id):
        if hit.ok and (n := sl.note(hit).number) not in seen:
            seen.append(n)
    return seen


def test_receiver_down_then_everything_delivered_in_order(care, records, subs, receiver, jwks):
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&status=final", receiver.url(), content="id-only"),
                           care.gp.token)  # fmt: skip
    receiver.stop()
    down = [care.report() for _ in range(5)]
    subs.wait_status(sub["id"], care.gp.token, lambda p: any(e["attempts"] >= 2 for e in sl.status_events(p)), "records retrying")
    receiver.start()
    expect_events(receiver, records, sub, care.gp, "id-only", [(r["id"], 1) for r in down], jwks)

    receiver.answer = 503
    refused = [care.report() for _ in range(3)]
    receiver.wait(lambda: sum(1 for h in receiver.hits(sub["id"]) if h.answered == 503) >= 3, "three notifications answered 503")
    p = subs.must_status(sub["id"], care.gp.token)
    assert "503" in (sl.value((p.get("error") or [None])[0]) or ""), f"$status names no 503: {p.get('error')}"
    receiver.answer = 200
    expect_events(receiver, records, sub, care.gp, "id-only", [(r["id"], 1) for r in down + refused], jwks)
    assert first_arrivals(receiver, sub["id"]) == list(range(1, 9)), f"out of order: {first_arrivals(receiver, sub['id'])}"
    # A refused notification kept its event number when it was sent again.
    numbers = {sl.note(h).focus: set() for h in receiver.hits(sub["id"])}
    for h in receiver.hits(sub["id"]):
        numbers[sl.note(h).focus].add(sl.note(h).number)
    assert all(len(v) == 1 for v in numbers.values()), f"a report sent under two event numbers: {numbers}"


def test_repeated_failures_put_the_subscription_in_error_until_it_is_resumed(care, records, subs, jwks):
    port = safe_free_port()  # nothing listens there yet
    endpoint = f"http://127.0.0.1:{port}/hook"
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&status=final", endpoint), care.gp.token)
    first = care.report()
    p = subs.wait_status(sub["id"], care.gp.token, lambda p: sl.status_code(p) == "error", "status error after repeated failures", ERROR_WAIT)
    check_status_shape(p, records, sub["id"], "error")
    reason = sl.value(p["error"][0])
    assert isinstance(reason, str) and (str(port) in reason or "refused" in reason.lower()), f"an error that says nothing: {reason!r}"
    stored = subs.read(sub["id"], care.gp.token)
    stored = rl.assert_resource(stored, 200, "Subscription")
    assert stored["status"] == "error" and stored.get("error"), stored

    with sl.Receiver(port) as receiver:
        second = care.report()  # pending: nothing goes out while in error
        time.sleep(sl.QUIET_WAIT)
        assert receiver.hits(sub["id"]) == [], "a subscription in error was delivered to"
        resumed = subs.set_status(sub["id"], "active", care.gp.token)
        assert resumed["status"] == "active" and "error" not in resumed, resumed
        expect_events(receiver, records, sub, care.gp, "full-resource", [(first["id"], 1), (second["id"], 1)], jwks)
    p = subs.must_status(sub["id"], care.gp.token)
    assert sl.status_code(p) == "active", p


def test_unreachable_endpoints_never_block_writes(care, records, subs):
    """Writes are answered while a subscription's endpoint hangs (a socket that never accepts)."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)  # accepts into the backlog, never reads: the POST hangs until records' timeout
        endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}/hook"
        sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}", endpoint), care.gp.token)
        for _ in range(5):
            r = records.create("DiagnosticReport", rl.report_body(care.patient.fhir_user, status="final"), care.gp.token, timeout=5)
            assert r.status_code == 201, rl.describe(r)
        assert_deleted(subs.delete(sub["id"], care.gp.token))


def test_records_killed_mid_burst_loses_nothing(stack, care, records, subs, receiver, jwks):
    urls = [u.strip().rstrip("/") for u in stack.get("RECORDS_URLS", stack["RECORDS_URL"]).split(",") if u.strip()]
    clients = [rl.Records(stack, instance=u) for u in urls]
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&code={care.code()}", receiver.url(),
                                                content="id-only"), care.gp.token)  # fmt: skip
    token = care.gp.token
    receiver.delay = 0.05  # a slow receiver: a backlog of events, some in flight when records dies
    acked: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        for i in range(400):
            if stop.is_set():
                return
            body = rl.report_body(care.patient.fhir_user, status="final", code=(care.system, "C"), conclusion=f"burst {i}")
            try:
                r = clients[i % len(clients)].create("DiagnosticReport", body, token, timeout=10)
                answers.append(str(r.status_code))
                if r.status_code == 201:
                    acked.append(r.json()["id"])
            except requests.RequestException as e:
                answers.append(type(e).__name__)
            time.sleep(0.03)

    writer = threading.Thread(target=burst, daemon=True)
    writer.start()
    try:
        time.sleep(1.5)
        stack_command(stack, "kill", "records")
        time.sleep(1.5)
        stack_command(stack, "start", "records")
        deadline = time.monotonic() + 60
        while not ready(stack, "records"):
            assert time.monotonic() < deadline, "records not ready 60 s after its restart"
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join(timeout=30)
        if not service_running(stack, "records"):
            stack_command(stack, "start", "records")
    assert len(acked) >= 10, f"too few reports written to judge: {answers}"
    # Every report that exists, acknowledged or not, is delivered exactly once (by event number).
    first = records.must_search("DiagnosticReport", {"patient": care.patient.fhir_user, "code": care.code(), "_count": "100"}, care.gp.token)
    committed = {rid for page in records.pages(first, care.gp.token) for rid in rl.ids(page)}
    assert set(acked) <= committed, f"acknowledged reports missing: {set(acked) - committed}"
    # A lease the killed instance held on the subscription may have to run out first (records' lease: 60 s).
    notes = sl.wait_for_events(receiver, sub["id"], len(committed), timeout=120)
    got = sl.delivered(receiver, sub["id"])
    assert sorted(got) == list(range(1, len(committed) + 1)), f"event numbers {sorted(got)} for {len(committed)} reports"
    foci = [sl.focus_of(n, records) for n in notes]
    assert sorted(foci) == sorted((rid, 1) for rid in committed), f"delivered {len(foci)} foci, {len(set(foci))} distinct, for {len(committed)} reports"
    for hit in receiver.hits(sub["id"]):
        sl.verify_signature(hit, jwks)
    print(f"\nburst: {len(answers)} writes ({len(acked)} acknowledged, {len(committed)} committed); "
          f"{len(receiver.hits(sub['id']))} POSTs for {len(got)} events")  # fmt: skip


# --------------------------------------------------------------------------- signatures


def test_signatures_verify_with_two_libraries_and_tampering_fails(stack, care, records, subs, receiver, jwks):
    # The key: Ed25519, kid its RFC 7638 thumbprint, the same on every records instance.
    assert jwks["keys"], jwks
    for jwk in jwks["keys"]:
        assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk.get("alg") == "EdDSA" and jwk.get("use") == "sig", jwk
        assert "d" not in jwk, "a private key in the JWKS"
        assert jwk["kid"] == OKPKey.import_key(jwk).thumbprint(), f"kid is not the RFC 7638 thumbprint: {jwk}"
    for url in [u for u in stack.get("RECORDS_URLS", "").split(",") if u.strip()]:
        other = requests.get(url.strip().rstrip("/") + "/.well-known/jwks.json", timeout=30)
        assert other.status_code == 200 and other.json() == jwks, f"{url}: {other.text[:300]}"

    header = "Authorization: Bearer receiver-secret"
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&status=final", receiver.url(),
                                                headers=[header, "X-E2E-Trace: abc 123"]), care.gp.token)  # fmt: skip
    reports = [care.report(), care.report()]
    notes = expect_events(receiver, records, sub, care.gp, "full-resource", [(r["id"], 1) for r in reports], jwks)
    for n in notes:
        assert n.hit.header("Authorization") == "Bearer receiver-secret" and n.hit.header("X-E2E-Trace") == "abc 123", n.hit.headers
        sig = n.hit.header(sl.SIGNATURE)
        for tampered in (n.hit.body.replace(b'"final"', b'"amended"', 1), n.hit.body + b" ", n.hit.body[:-1]):
            assert tampered != n.hit.body
            assert not sl.verify_joserfc(sig, tampered, jwks), "joserfc accepts a tampered body"
            assert not sl.verify_pyjwt(sig, tampered, jwks), "PyJWT accepts a tampered body"
    # One notification's signature does not fit another's body.
    a, b = notes[0].hit, notes[1].hit
    assert not sl.verify_joserfc(a.header(sl.SIGNATURE), b.body, jwks) and not sl.verify_pyjwt(a.header(sl.SIGNATURE), b.body, jwks)
    # A key that is not records' fails too.
    forged = {"keys": [{**jwks["keys"][0], "x": OKPKey.generate_key("Ed25519").as_dict(private=False)["x"]}]}
    assert not sl.verify_joserfc(a.header(sl.SIGNATURE), a.body, forged) and not sl.verify_pyjwt(a.header(sl.SIGNATURE), a.body, forged)


# --------------------------------------------------------------------------- bad input and refusals


def test_bad_subscriptions_are_422(care, subs, receiver):
    pin = f"DiagnosticReport?patient={care.patient.fhir_user}"
    url = receiver.url()
    bad = {
        "criteria on Patient": sl.subscription_body("Patient?name=x", url),
        "criteria on Observation": sl.subscription_body("Observation?patient=" + care.patient.fhir_user, url),
        "criteria on no resource": sl.subscription_body("?patient=" + care.patient.fhir_user, url),
        "empty criteria": sl.subscription_body("", url),
        "unknown parameter": sl.subscription_body(pin + "&colour=blue", url),
        "_count": sl.subscription_body(pin + "&_count=5", url),
        "_sort": sl.subscription_body(pin + "&_sort=date", url),
        "_include": sl.subscription_body(pin + "&_include=DiagnosticReport:subject", url),
        "_summary": sl.subscription_body(pin + "&_summary=true", url),
        "_elements": sl.subscription_body(pin + "&_elements=status", url),
        "http to another host": sl.subscription_body(pin, "http://example.com/hook"),
        "http to a private address": sl.subscription_body(pin, "http://10.1.2.3/hook"),
        "not http at all": sl.subscription_body(pin, "ftp://127.0.0.1/hook"),
        "a relative endpoint": sl.subscription_body(pin, "/hook"),
        "rest-hook without endpoint": sl.subscription_body(pin, None),
        "websocket with an endpoint": sl.subscription_body(pin, url, channel="websocket"),
        "channel email": sl.subscription_body(pin, "mailto:doc@example.com", channel="email"),
        "channel sms": sl.subscription_body(pin, "tel:+15555550100", channel="sms"),
        "channel message": sl.subscription_body(pin, url, channel="message"),
        "xml payload": sl.subscription_body(pin, url, payload="application/fhir+xml"),
        "unknown payload content": sl.subscription_body(pin, url, content="everything"),
        "a header without a name": sl.subscription_body(pin, url, headers=["no colon here"]),
        "status off on create": sl.subscription_body(pin, url, status="off"),
        "status error on create": sl.subscription_body(pin, url, status="error"),
        "no reason": {k: v for k, v in sl.subscription_body(pin, url).items() if k != "reason"},
        "no channel": {k: v for k, v in sl.subscription_body(pin, url).items() if k != "channel"},
    }
    problems = [wrong(lambda: rl.assert_outcome(subs.create(body, care.gp.token), 422, what=what)) for what, body in bad.items()]
    problems.append(wrong(lambda: rl.assert_outcome(subs.create({"resourceType": "Patient", "name": [{"family": "X"}]}, care.gp.token), {400, 422},
                                                    what="a Patient")))  # fmt: skip
    problems.append(wrong(lambda: rl.assert_outcome(subs.create("{not json", care.gp.token), 400, what="not JSON")))
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} bad subscriptions not refused as they should be:\n" + "\n".join(problems)
    # Loopback http is development's exception: every spelling of it is accepted.
    for endpoint in (f"http://localhost:{receiver.port}/hook", f"http://127.0.0.1:{receiver.port}/hook", f"http://[::1]:{receiver.port}/hook"):
        sub = subs.must_create(sl.subscription_body(pin, endpoint), care.gp.token, f"loopback endpoint {endpoint}")
        assert_deleted(subs.delete(sub["id"], care.gp.token))


def wrong(check) -> str | None:
    """The first line of what a check found wrong (None when it holds): lets a test report every
    refusal that went wrong, not only the first."""
    try:
        check()
    except AssertionError as e:
        return str(e).splitlines()[0][:400]
    return None


def test_who_may_subscribe(care, records, subs, receiver, actors, rec_admin, rec_receptionist, stack):
    body = sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}&status=final", receiver.url())
    service = rl.Actor("script client", "service", lambda: service_token(stack))
    problems = []
    for who in (rec_admin, rec_receptionist, care.tech, service):
        problems.append(wrong(lambda: rl.assert_outcome(subs.create(body, who.token), 403, what=f"{who.role} subscribing")))
        problems.append(wrong(lambda: rl.assert_outcome(subs.search({}, who.token), 403, what=f"{who.role} searching subscriptions")))
    # Criteria pinned to a patient the caller cannot read now.
    other_pin = sl.subscription_body(f"DiagnosticReport?patient={care.other.fhir_user}", receiver.url())
    subject_pin = sl.subscription_body(f"DiagnosticReport?subject={care.other.fhir_user}", receiver.url())
    stranger = actors.ehr(rl.READ_SYSTEM_SCOPES, trusted=False, name="E2E EHR without consent")
    no_reports = actors.ehr(("system/Patient.rs",), trusted=True, name="E2E EHR without report scope")
    for what, sub, who in (("a patient subscribing to another patient", other_pin, care.patient),
                           ("a doctor subscribing to an unassigned patient", other_pin, care.gp),
                           ("a patient with subject= another patient", subject_pin, care.patient),
                           ("a doctor with subject= an unassigned patient", subject_pin, care.gp),
                           ("an untrusted EHR without consent", body, stranger),
                           ("an EHR without DiagnosticReport read scope", body, no_reports)):  # fmt: skip
        problems.append(wrong(lambda: rl.assert_outcome(subs.create(sub, who.token), 403, what=what)))
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} subscriptions not refused as they should be:\n" + "\n".join(problems)
    # No token at all.
    for r in (subs.create(body, None), subs.search({}, None), subs.read("00000000-0000-4000-8000-000000000000", None),
              subs.status("00000000-0000-4000-8000-000000000000", None)):  # fmt: skip
        rl.assert_outcome(r, 401, what="no token")
        assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), r.headers


def test_a_subscription_is_visible_to_its_owner_only(care, subs, receiver, actors):
    sub = subs.must_create(sl.subscription_body(f"DiagnosticReport?patient={care.patient.fhir_user}", receiver.url()), care.patient.token)
    second_patient = actors.patient(gp=care.gp)
    for who in (care.gp, care.other, second_patient, actors.doctor()):
        rl.assert_outcome(subs.read(sub["id"], who.token), 404, what=f"{who.role} reading another's subscription")
        rl.assert_outcome(subs.status(sub["id"], who.token), 404, what=f"{who.role} reading another's $status")
        body = {**rl.without_meta(sub), "id": sub["id"], "reason": "hijacked"}
        rl.assert_outcome(subs.update(body, who.token), 404, what=f"{who.role} updating another's subscription")
        rl.assert_outcome(subs.delete(sub["id"], who.token), 404, what=f"{who.role} deleting another's subscription")
        found = rl.ids(rl.assert_bundle(subs.search({}, who.token)))
        assert sub["id"] not in found, f"{who.role} finds another's subscription"
    assert rl.assert_resource(subs.read(sub["id"], care.patient.token), 200, "Subscription")["reason"] == sub["reason"]


# --------------------------------------------------------------------------- CRUD and $status


def test_read_update_search_delete_and_status(care, records, subs, receiver, jwks):
    owner = care.gp
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&status=final"
    sub = subs.must_create(sl.subscription_body(criteria, receiver.url(), content="id-only", end="2099-01-01T00:00:00Z"), owner.token)
    assert sub["criteria"] == criteria and sub["channel"]["endpoint"] == receiver.url() and sub["end"].startswith("2099-01-01"), sub
    assert sub["channel"]["_payload"]["extension"][0]["valueCode"] == "id-only", sub["channel"]
    read = rl.assert_resource(subs.read(sub["id"], owner.token), 200, "Subscription", version=1)
    assert read == sub, f"read differs from the create's answer:\n{read}\n{sub}"

    p = subs.must_status(sub["id"], owner.token)
    assert check_status_shape(p, records, sub["id"]) == [] and sl.value(p["events-since-subscription-start"][0]) == "0", p
    assert "error" not in p, p

    # Update with If-Match; a stale version is 412.
    changed = {**rl.without_meta(sub), "id": sub["id"], "reason": "e2e: renamed"}
    v2 = rl.assert_resource(subs.update(changed, owner.token, if_match=1), 200, "Subscription", version=2)
    assert v2["reason"] == "e2e: renamed" and v2["status"] == "active", v2
    rl.assert_outcome(subs.update({**changed, "reason": "stale"}, owner.token, if_match=1), 412, what="a stale If-Match")
    rl.assert_outcome(subs.update({**changed, "criteria": "Patient?name=x"}, owner.token), 422, what="updating to bad criteria")

    # Search: own subscriptions, by status and channel type.
    ws = subs.must_create(sl.subscription_body(criteria, None, channel="websocket", content=None), owner.token)
    everything = rl.ids(rl.assert_bundle(subs.search({"_count": "100"}, owner.token)))
    assert {sub["id"], ws["id"]} <= set(everything), everything
    hooks = rl.ids(rl.assert_bundle(subs.search({"type": "rest-hook", "_count": "100"}, owner.token)))
    assert sub["id"] in hooks and ws["id"] not in hooks, hooks
    sockets = rl.ids(rl.assert_bundle(subs.search({"type": "websocket"}, owner.token)))
    assert ws["id"] in sockets and sub["id"] not in sockets, sockets
    one = rl.assert_bundle(subs.search({"_count": "1"}, owner.token))
    assert len(rl.ids(one)) == 1, one

    # Paused: what is written meanwhile is not delivered; resumed: what comes after is.
    assert subs.set_status(sub["id"], "off", owner.token)["status"] == "off"
    assert sub["id"] in rl.ids(rl.assert_bundle(subs.search({"status": "off"}, owner.token)))
    assert sub["id"] not in rl.ids(rl.assert_bundle(subs.search({"status": "active", "_count": "100"}, owner.token)))
    paused = care.report()
    assert subs.set_status(sub["id"], "active", owner.token)["status"] == "active"
    after = care.report()
    expect_events(receiver, records, sub, owner, "id-only", [(after["id"], 1)], jwks)
    p = subs.must_status(sub["id"], owner.token)
    events = check_status_shape(p, records, sub["id"])
    assert (paused["id"], 1) not in events_by_focus(p, records), f"a report written while paused became an event: {events}"
    assert events[0]["state"] == "delivered" and events[0]["event-number"] == "1" and events[0]["attempts"] >= 1, events

    # Delete: 200 OperationOutcome, then 410; nothing more delivered.
    assert_deleted(subs.delete(sub["id"], owner.token))
    rl.assert_outcome(subs.read(sub["id"], owner.token), 410, what="reading a deleted subscription")
    assert sub["id"] not in rl.ids(rl.assert_bundle(subs.search({"_count": "100"}, owner.token)))
    sentinel_sub = subs.must_create(sl.subscription_body(criteria, receiver.url("/sentinel"), content="id-only"), owner.token)
    last = care.report()
    expect_events(receiver, records, sentinel_sub, owner, "id-only", [(last["id"], 1)], jwks)
    time.sleep(1.0)
    assert sorted(sl.delivered(receiver, sub["id"])) == [1], "a deleted subscription was delivered to"


def test_event_numbers_are_per_subscription(care, records, subs, receiver, jwks):
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&status=final"
    early = subs.must_create(sl.subscription_body(criteria, receiver.url(), content="id-only"), care.gp.token)
    first = care.report()
    late = subs.must_create(sl.subscription_body(criteria, receiver.url(), content="id-only"), care.gp.token)
    second = care.report()
    expect_events(receiver, records, early, care.gp, "id-only", [(first["id"], 1), (second["id"], 1)], jwks)
    expect_events(receiver, records, late, care.gp, "id-only", [(second["id"], 1)], jwks)


# --------------------------------------------------------------------------- audit


def test_each_delivery_is_an_audit_event_the_patient_sees(stack, care, records, subs, receiver, jwks):
    audit = aud.Audit(stack)
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&status=final"
    mine = subs.must_create(sl.subscription_body(criteria, receiver.url(), content="id-only"), care.patient.token)
    doctors = subs.must_create(sl.subscription_body(criteria, receiver.url(), content="empty"), care.gp.token)
    reports = [care.report(), care.report()]
    expect_events(receiver, records, mine, care.patient, "id-only", [(r["id"], 1) for r in reports], jwks)
    expect_events(receiver, records, doctors, care.gp, "empty", [(r["id"], 1) for r in reports], jwks)

    events = audit.wait_for({"patient": care.patient.fhir_user, "subtype": "notify"}, care.patient.token, count=4)
    notify = [e for e in events if "notify" in aud.codes(e, "subtype")]
    for sub, who in ((mine, care.patient), (doctors, care.gp)):
        for number, report in enumerate(reports, 1):
            desc = f"delivered event {number} of Subscription/{sub['id']} by rest-hook"
            found = [e for e in notify if e.get("outcomeDesc") == desc]
            assert len(found) == 1, f"{len(found)} AuditEvents '{desc}' in the patient's view"
            e = found[0]
            assert e["action"] == "R" and e.get("outcome") == "0", e
            assert any(c.get("system") == "https://medledger.dev/fhir/CodeSystem/subscription" and c.get("code") == "notify"
                       for c in e.get("subtype") or []), e["subtype"]  # fmt: skip
            agents = {(a.get("who") or {}).get("reference") for a in e.get("agent") or []}
            assert who.fhir_user in agents, f"the subscriber {who.fhir_user} is not an agent: {e['agent']}"
            entities = {(x.get("what") or {}).get("reference") for x in e.get("entity") or []}
            assert f"DiagnosticReport/{report['id']}/_history/1" in entities and care.patient.fhir_user in aud.patients(e), e["entity"]
    # The other patient sees none of it.
    theirs = audit.events({"patient": care.other.fhir_user, "subtype": "notify"}, care.other.token)
    assert not [e for e in theirs if care.patient.fhir_user in aud.patients(e)], "another patient sees these deliveries"


def test_the_capability_statement_advertises_subscriptions(records):
    cap = records.http.get(records.base + "/metadata", headers={"Accept": rl.FHIR_JSON}, timeout=rl.HTTP_TIMEOUT).json()
    rest = cap["rest"][0]
    sockets = [e for e in rest.get("extension") or [] if e.get("url") == "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"]
    assert len(sockets) == 1 and sockets[0]["valueUri"] == sl.ws_url(records.public), rest.get("extension")
    sub = [r for r in rest["resource"] if r["type"] == "Subscription"]
    assert len(sub) == 1, [r["type"] for r in rest["resource"]]
    assert {i["code"] for i in sub[0]["interaction"]} >= {"create", "read", "update", "delete", "search-type"}, sub[0]["interaction"]
    assert {p["name"] for p in sub[0].get("searchParam") or []} >= {"status", "type"}, sub[0].get("searchParam")
    assert any(o["name"] == "status" for o in sub[0].get("operation") or []), sub[0].get("operation")


# --------------------------------------------------------------------------- websocket


def test_websocket_upgrade_needs_a_subscribers_bearer_token(stack, care, rec_admin):
    """No upgrade without a valid token of a caller who may subscribe, on every records instance.
    The refused upgrade is a bare 400 (openapi/records.yaml: the WebSocket library answers every
    refused upgrade so); the same GET without the upgrade headers says why: 401, 403, or 426 to a
    subscriber that did not ask for an upgrade."""
    urls = [u.strip().rstrip("/") for u in stack.get("RECORDS_URLS", stack["RECORDS_URL"]).split(",") if u.strip()]
    for url in urls:
        records = rl.Records(stack, instance=url)
        for token, status in ((None, 401), ("not-a-token", 401), (care.gp.token[:-4] + "AAAA", 401), (rec_admin.token, 403)):
            what = f"{url} token {token and token[:10]!r}"
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                sl.ws_connect(url, token).close()
            e = refused.value
            assert e.status_code in (400, status), f"{what}: {e.status_code} {e.resp_headers} {e.resp_body!r}"
            why = records.get("/websocket", token)
            rl.assert_outcome(why, status, what=f"{what}: the plain GET")
            if status == 401:
                assert why.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), why.headers
        why = records.get("/websocket", care.gp.token)
        rl.assert_outcome(why, 426, what=f"{url}: a subscriber's GET without the upgrade")
        assert why.headers.get("Upgrade", "").lower() == "websocket", why.headers
        sl.ws_connect(url, care.gp.token).close()  # and with it, the upgrade happens


def test_websocket_pings_on_every_records_instance(stack, care, records, subs, actors, receiver):
    urls = [u.strip().rstrip("/") for u in stack.get("RECORDS_URLS", "").split(",") if u.strip()]
    assert len(urls) >= 2, f"RECORDS_URLS={stack.get('RECORDS_URLS')!r}: the websocket relay needs two records instances (stack up --replicas 2)"
    criteria = f"DiagnosticReport?patient={care.patient.fhir_user}&status=final"
    sub = subs.must_create(sl.subscription_body(criteria, None, channel="websocket", content=None), care.gp.token)
    sid = sub["id"]
    hook = subs.must_create(sl.subscription_body(criteria, receiver.url()), care.gp.token)

    sockets = [sl.ws_connect(url, care.gp.token) for url in urls]
    try:
        for ws in sockets:
            ws.send(f"bind {sid}")
            assert sl.ws_expect(ws, lambda m: m.split(" ")[0] in ("bound", "error"), "the bind answer", 10)[-1] == f"bound {sid}"
        # Someone else's subscription, a rest-hook one and an unknown id cannot be bound.
        stranger = sl.ws_connect(urls[0], care.other_gp.token)
        sockets.append(stranger)
        for ws, bad in ((stranger, sid), (sockets[0], hook["id"]), (sockets[0], "00000000-0000-4000-8000-000000000000")):
            ws.send(f"bind {bad}")
            answer = sl.ws_expect(ws, lambda m: m.split(" ")[0] in ("bound", "error"), f"the answer to bind {bad}", 10)[-1]
            assert answer.startswith(f"error {bad}"), f"bind {bad}: {answer!r}"

        # A write through the first instance pings on both; so does one through the second.
        for n, url in enumerate(urls[:2]):
            rl.Records(stack, instance=url).must_create(
                "DiagnosticReport", rl.report_body(care.patient.fhir_user, status="final"), care.gp.token, f"a report through {url}")
            for ws, where in zip(sockets[:2], urls):
                got = sl.ws_expect(ws, lambda m: m.startswith("ping"), f"ping {n + 1} on {where}")
                assert got == [f"ping {sid}"], f"{where}: {got}"
        care.report(status="preliminary")  # matches nothing: no ping
        for ws, where in zip(sockets[:2], urls):
            assert sl.ws_quiet(ws, 1.5) == [], f"{where}: a message without a matching write"
        assert sl.ws_quiet(stranger, 0.2) == [], "a stranger's socket got pings"
    finally:
        for ws in sockets:
            ws.close()
    # Each of the two events is one AuditEvent in the patient's view, however many sockets pinged.
    audit = aud.Audit(stack)
    events = audit.wait_for({"patient": care.patient.fhir_user, "subtype": "notify"}, care.patient.token, count=4)
    for number in (1, 2):
        desc = f"delivered event {number} of Subscription/{sid} by websocket"
        assert len([e for e in events if e.get("outcomeDesc") == desc]) == 1, f"not one AuditEvent '{desc}': {[e.get('outcomeDesc') for e in events]}"
