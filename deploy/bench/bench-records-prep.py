"""Set-up steps and sanity checks for deploy/bench/records (Python standard library only).

    python bench-records-prep.py setup --identity URL --records URL --create-patients N
                                       --seed-patients M --create-out FILE --seed-out FILE
        logs in as $ADMIN_USER / $ADMIN_PASSWORD; as the admin creates two Practitioners in records
        and three accounts with random passwords through identity's API: a receptionist, a
        technologist and a doctor (fhirUser = one of the Practitioners each); as the receptionist
        creates N + M Patients in records (8 at a time), each with the doctor as its
        generalPractitioner, writing N ids to --create-out (the subjects of the create phase) and
        M to --seed-out (the patients the seeded reports are spread over). Then checks what the
        phases rely on: the technologist creates a `preliminary` DiagnosticReport (201 with a
        Location) and reads it back (200), the doctor finds it by a search on its patient, and a
        technologist's `final` report is refused (403; only a warning). Prints the logins as one
        JSON line ({"technologist":{"username","password"},"doctor":{…},"practitioner"}: the
        technologist's reference) for the other commands ($BENCH_LOGINS).
    python bench-records-prep.py consent-setup --identity URL --records URL --consent URL --patients FILE
        as the admin creates a third Practitioner and a doctor account for it (the consultant, whom
        no patient is assigned to); as the receptionist, on each patient's behalf, a Consent at the
        consent service granting the consultant all of the patient's reports (8 at a time), for
        every patient id in FILE; checks that the consultant then finds the first patient's reports.
        Prints $BENCH_LOGINS with the consultant added.
    python bench-records-prep.py token --identity URL --as technologist|doctor|consultant
        logs in as that account of $BENCH_LOGINS; prints the access token
    python bench-records-prep.py count --records URL
        prints how many DiagnosticReports the caller of $BENCH_AUTH ("Bearer …", the doctor: every
        bench patient is theirs) sees (_summary=count)
    python bench-records-prep.py ledger-wait --identity URL --ledger URL [--n N]
        the baseline of the anchoring latency: N (default 40) single-entry POST /entries?wait=checkpoint
        to the ledger, one after another, with the stack's script client ($SERVICE_CLIENT_ID and
        $SERVICE_CLIENT_SECRET); prints {"n","p50_ms","p99_ms","max_ms"}
    python bench-records-prep.py search-check --records URL --patient ID
        one search as the phase makes it (patient=ID&_count=20); must be a searchset with 1–20
        entries, all of that patient, and a total; prints {"total","entries","bytes"}

Secrets come from the environment and go to stdout only (the caller keeps them in variables, not
in argv). Every request has a timeout and is never retried; every target must be 127.0.0.1.
Exit status 1 with a message on stderr when a check fails.
"""

import argparse
import base64
import concurrent.futures
import json
import secrets
import sys
import time
import urllib.parse

from benchlib import (FHIR_JSON, Failed, auth_token, bearer, call, create, create_account, describe, env, local_url,
                      login_token, percentiles, report_body, searchset)

PATIENT_WORKERS = 8
MAX_PATIENTS = 100000


def die(msg):
    print(f"bench-records-prep: {msg}", file=sys.stderr)
    sys.exit(1)


def warn(msg):
    print(f"bench-records-prep: warning: {msg}", file=sys.stderr)


def patient(n, doctor):
    return {
        "resourceType": "Patient",
        "generalPractitioner": [{"reference": doctor}],
        "identifier": [{"system": "urn:medledger:bench:patient", "value": f"{secrets.token_hex(4)}-{n}"}],
        "name": [{"family": f"Bench{n}", "given": ["Pat"]}],
        "gender": ("female", "male", "other", "unknown")[n % 4],
        "birthDate": f"{1940 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}",
    }


def search(records, token, patient_id):
    return searchset(f"{records}/fhir/DiagnosticReport?patient={urllib.parse.quote(patient_id)}&_count=20", token)


def write_ids(path, ids):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(i + "\n" for i in ids))


def cmd_setup(args):
    identity, records = local_url(args.identity), local_url(args.records)
    total = args.create_patients + args.seed_patients
    if args.create_patients < 1 or args.seed_patients < 1 or total > MAX_PATIENTS:
        die(f"--create-patients and --seed-patients must be at least 1, together at most {MAX_PATIENTS}")
    admin = login_token(identity, env("ADMIN_USER"), env("ADMIN_PASSWORD"))
    try:
        practitioner, doctor_ref = ("Practitioner/" + create(records, admin, {
            "resourceType": "Practitioner", "name": [{"family": family, "given": ["Bench"]}]})
            for family in ("Technologist", "Doctor"))
    except Failed as e:
        die(f"the admin could not create a Practitioner: {e}")
    reception_user, reception_pw = create_account(identity, admin, "receptionist")
    tech_user, tech_pw = create_account(identity, admin, "technologist", practitioner)
    doctor_user, doctor_pw = create_account(identity, admin, "doctor", doctor_ref)
    reception = login_token(identity, reception_user, reception_pw)

    ids = [None] * total
    with concurrent.futures.ThreadPoolExecutor(PATIENT_WORKERS) as pool:
        futures = {pool.submit(create, records, reception, patient(n, doctor_ref)): n for n in range(total)}
        for future in concurrent.futures.as_completed(futures):
            try:
                ids[futures[future]] = future.result()
            except Failed as e:
                pool.shutdown(cancel_futures=True)
                die(f"the receptionist could not create a Patient: {e}")
    write_ids(args.create_out, ids[:args.create_patients])
    write_ids(args.seed_out, ids[args.create_patients:])

    tech = login_token(identity, tech_user, tech_pw)
    doctor = login_token(identity, doctor_user, doctor_pw)
    try:
        rid = create(records, tech, report_body(ids[0], practitioner))
        url = f"{records}/fhir/DiagnosticReport/{rid}"
        status, _, answer = call("GET", url, None, bearer(tech))
        if status != 200 or json.loads(answer).get("id") != rid:
            raise Failed("the technologist cannot read its report: " + describe("GET", url, status, answer))
        bundle, _ = search(records, doctor, ids[0])
        found = [e.get("resource", {}).get("id") for e in bundle.get("entry", [])]
        if rid not in found:
            raise Failed(f"the doctor's search on Patient/{ids[0]} does not find the report just created")
    except Failed as e:
        die(f"set-up check failed: {e}")
    url = f"{records}/fhir/DiagnosticReport"
    status, _, answer = call("POST", url, json.dumps(report_body(ids[0], practitioner, "final")).encode(),
                             bearer(tech, FHIR_JSON))
    if status != 403:
        warn("a technologist's `final` report should answer 403: " + describe("POST", url, status, answer))
    print(json.dumps({
        "technologist": {"username": tech_user, "password": tech_pw},
        "doctor": {"username": doctor_user, "password": doctor_pw},
        "receptionist": {"username": reception_user, "password": reception_pw},
        "practitioner": practitioner,
    }, separators=(",", ":")))


def consent(patient_id, actor):
    """A privacy Consent: the patient grants `actor` access to all their reports."""
    coding = lambda system, code: {"coding": [{"system": system, "code": code}]}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [coding("http://loinc.org", "59284-0")],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN"),
        "provision": {
            "type": "permit",
            "actor": [{"role": coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                       "reference": {"reference": actor}}],
            "action": [coding("http://terminology.hl7.org/CodeSystem/consentaction", "access")],
        },
    }


def cmd_consent_setup(args):
    identity, records, consent_url = local_url(args.identity), local_url(args.records), local_url(args.consent)
    logins = json.loads(env("BENCH_LOGINS"))
    with open(args.patients, encoding="utf-8") as f:
        patients = [line.strip() for line in f if line.strip()]
    admin = login_token(identity, env("ADMIN_USER"), env("ADMIN_PASSWORD"))
    try:
        consultant_ref = "Practitioner/" + create(records, admin, {
            "resourceType": "Practitioner", "name": [{"family": "Consultant", "given": ["Bench"]}]})
    except Failed as e:
        die(f"the admin could not create a Practitioner: {e}")
    user, password = create_account(identity, admin, "doctor", consultant_ref)
    reception = login_token(identity, logins["receptionist"]["username"], logins["receptionist"]["password"])
    with concurrent.futures.ThreadPoolExecutor(PATIENT_WORKERS) as pool:
        for future in [pool.submit(create, consent_url, reception, consent(p, consultant_ref)) for p in patients]:
            try:
                future.result()
            except Failed as e:
                pool.shutdown(cancel_futures=True)
                die(f"the receptionist could not record a Consent: {e}")
    consultant = login_token(identity, user, password)
    deadline = time.monotonic() + 10   # records' grant cache bound (CONSENT_CACHE_SECONDS) and more
    while True:
        bundle, _ = search(records, consultant, patients[0])
        if bundle.get("entry"):
            break
        if time.monotonic() > deadline:
            die(f"the consultant sees none of Patient/{patients[0]}'s reports although the patient granted access")
        time.sleep(0.5)
    logins["consultant"] = {"username": user, "password": password}
    logins["consultant_practitioner"] = consultant_ref
    print(json.dumps(logins, separators=(",", ":")))


def client_credentials(identity):
    basic = base64.b64encode(f"{env('SERVICE_CLIENT_ID')}:{env('SERVICE_CLIENT_SECRET')}".encode()).decode()
    status, _, answer = call("POST", identity + "/auth/token", b"grant_type=client_credentials",
                             {"Authorization": "Basic " + basic, "Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        die("client_credentials failed: " + describe("POST", identity + "/auth/token", status, answer))
    return json.loads(answer)["access_token"]


def account_login(role):
    try:
        data = json.loads(env("BENCH_LOGINS"))[role]
        return data["username"], data["password"]
    except (ValueError, KeyError, TypeError):
        die("$BENCH_LOGINS is not the JSON line `setup` printed")


def cmd_token(args):
    print(login_token(local_url(args.identity), *account_login(args.role)))


def cmd_count(args):
    records = local_url(args.records)
    url = f"{records}/fhir/DiagnosticReport?_summary=count"
    try:
        status, _, answer = call("GET", url, None, bearer(auth_token()))
    except Failed as e:
        die(str(e))
    total = json.loads(answer).get("total") if status == 200 else None
    if not isinstance(total, int):
        die("no total: " + describe("GET", url, status, answer))
    print(total)


def cmd_search_check(args):
    records = local_url(args.records)
    try:
        bundle, size = search(records, auth_token(), args.patient)
    except Failed as e:
        die(str(e))
    entries = bundle.get("entry", [])
    total = bundle.get("total")
    subjects = {e.get("resource", {}).get("subject", {}).get("reference") for e in entries}
    if not isinstance(total, int) or not 1 <= len(entries) <= 20 or subjects != {f"Patient/{args.patient}"}:
        die(f"unexpected search answer for Patient/{args.patient}: total {total!r}, {len(entries)} entries, "
            f"subjects {sorted(map(str, subjects))[:3]}")
    print(json.dumps({"total": total, "entries": len(entries), "bytes": size}))


def cmd_ledger_wait(args):
    identity, ledger = local_url(args.identity), local_url(args.ledger)
    headers = bearer(client_credentials(identity), "application/json")
    run = secrets.token_hex(8)
    took = []
    for i in range(args.n):
        body = json.dumps({"entries": [{"idempotencyKey": f"bench-wait-{run}-{i}", "entry": {"bench": run, "i": i}}]}).encode()
        started = time.monotonic()
        status, _, answer = call("POST", ledger + "/entries?wait=checkpoint", body, headers)
        took.append((time.monotonic() - started) * 1000)
        if status != 200:
            die("POST /entries?wait=checkpoint: " + describe("POST", ledger + "/entries", status, answer))
    print(json.dumps(percentiles(took)))


def main():
    ap = argparse.ArgumentParser(description="set-up steps for deploy/bench/records")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--identity", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--create-patients", type=int, required=True)
    p.add_argument("--seed-patients", type=int, required=True)
    p.add_argument("--create-out", required=True)
    p.add_argument("--seed-out", required=True)
    p = sub.add_parser("token")
    p.add_argument("--identity", required=True)
    p.add_argument("--as", dest="role", choices=("technologist", "doctor", "consultant"), required=True)
    p = sub.add_parser("consent-setup")
    p.add_argument("--identity", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--consent", required=True)
    p.add_argument("--patients", required=True)
    p = sub.add_parser("count")
    p.add_argument("--records", required=True)
    p = sub.add_parser("ledger-wait")
    p.add_argument("--identity", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--n", type=int, default=40)
    p = sub.add_parser("search-check")
    p.add_argument("--records", required=True)
    p.add_argument("--patient", required=True)
    args = ap.parse_args()
    {"setup": cmd_setup, "token": cmd_token, "count": cmd_count, "ledger-wait": cmd_ledger_wait,
     "search-check": cmd_search_check, "consent-setup": cmd_consent_setup}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        die(str(e))
