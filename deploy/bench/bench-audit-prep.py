"""Set-up steps and checks for deploy/bench/audit (Python standard library only).

    python bench-audit-prep.py admin-token --identity URL
        logs in as $ADMIN_USER / $ADMIN_PASSWORD; prints the access token
    python bench-audit-prep.py patients --identity URL --audit URL --ids FILE --accounts N --out FILE
        as the admin creates a receptionist, who creates N patient accounts through identity's API,
        each linked (fhirUser) to one of the first N patients of FILE (lines `Patient/<id>`, the
        patients the seeded events are about); each patient replaces its one-time password with a
        random one and logs in; checks each one's search of its own events
        (as `search-check`) and that asking for another patient's events shows it none; writes
        `TOKEN PATH` lines to --out (mode 600: live tokens), PATH being the patient's search of the
        query phase. Prints {"accounts","events_min","events_max"} (the accounts' events).
    python bench-audit-prep.py search-check --audit URL --patient Patient/ID [--count 50]
        one search as the query phase makes it, with the token of $BENCH_AUTH: must be a
        searchset with min(count, total) entries, every one about that patient, newest first,
        and a total; prints {"total","entries","bytes"}
    python bench-audit-prep.py verify --audit URL --events N [--timeout S]
        GET /chain/verify (the whole chain) with the token of $BENCH_AUTH (an admin's): must
        answer 200, valid, with at least N events checked; prints {"seconds","checked","anchors","confirmed"}

Secrets come from the environment and go to stdout or a mode-600 file only. Every request has a
timeout and is never retried; every target must be 127.0.0.1. Exit status 1 with a message on
stderr when a check fails.
"""

import argparse
import json
import os
import sys
import time
import urllib.parse

from benchlib import (Failed, auth_token, bearer, call, create_account, describe, env, local_url, login, login_token,
                      random_password, searchset)

ACCOUNT_LIMIT = 100


def search_path(patient, count):
    return f"/fhir/AuditEvent?patient={urllib.parse.quote(patient, safe='/')}&_count={count}"


def search(audit, token, patient, count):
    """The searchset Bundle of a patient's newest events, and its size in bytes."""
    return searchset(audit + search_path(patient, count), token)


def about(event, patient):
    """R4's `patient` parameter: the patient is an agent (their own login) or an entity (a read)."""
    return (any(a.get("who", {}).get("reference") == patient for a in event.get("agent", []))
            or any(e.get("what", {}).get("reference") == patient for e in event.get("entity", [])))


def check_search(audit, token, patient, count):
    """(total, entries, bytes) of a search that holds what the query phase relies on."""
    bundle, size = search(audit, token, patient, count)
    events = [e.get("resource", {}) for e in bundle.get("entry", [])]
    total = bundle.get("total")
    if not isinstance(total, int) or len(events) != min(count, total):
        raise Failed(f"{patient}: total {total!r} with {len(events)} entries (_count={count})")
    if not all(about(e, patient) for e in events):
        raise Failed(f"{patient}: the search returned events about other patients")
    order = [(e.get("recorded", ""), int(e.get("id", "0"))) for e in events]
    if order != sorted(order, reverse=True):
        raise Failed(f"{patient}: the events are not newest first")
    return total, len(events), size


def patient_token(identity, receptionist, patient):
    """A new patient account's access token, once it replaced the receptionist's one-time password."""
    username, password = create_account(identity, receptionist, "patient", patient)
    first = login(identity, username, password)["access_token"]
    url = identity + "/users/me/password"
    new = random_password()
    status, _, answer = call("POST", url, json.dumps({"currentPassword": password, "newPassword": new}).encode(),
                             {"Authorization": "Bearer " + first, "Content-Type": "application/json"})
    if status != 204:
        raise Failed(f"{username} cannot replace its one-time password: " + describe("POST", url, status, answer))
    return login_token(identity, username, new)


def read_patients(path, n):
    with open(path, encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    if len(ids) < max(n, 2) or not all(i.startswith("Patient/") for i in ids):
        raise Failed(f"{path} must list at least {max(n, 2)} Patient/<id> lines")
    return ids


def cmd_admin_token(args):
    print(login_token(local_url(args.identity), env("ADMIN_USER"), env("ADMIN_PASSWORD")))


def cmd_patients(args):
    identity, audit = local_url(args.identity), local_url(args.audit)
    if not 1 <= args.accounts <= ACCOUNT_LIMIT:
        raise Failed(f"--accounts must be 1..{ACCOUNT_LIMIT}")
    patients = read_patients(args.ids, args.accounts)
    admin = login_token(identity, env("ADMIN_USER"), env("ADMIN_PASSWORD"))
    receptionist = login_token(identity, *create_account(identity, admin, "receptionist"))
    lines, totals = [], []
    for patient in patients[:args.accounts]:
        token = patient_token(identity, receptionist, patient)
        total, _, _ = check_search(audit, token, patient, args.count)
        other = patients[-1] if patient != patients[-1] else patients[0]
        bundle, _ = search(audit, token, other, args.count)
        if bundle.get("total") != 0 or bundle.get("entry"):
            raise Failed(f"{patient}'s account sees events about {other}")
        totals.append(total)
        lines.append(f"{token} {search_path(patient, args.count)}\n")
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    print(json.dumps({"accounts": len(lines), "events_min": min(totals), "events_max": max(totals)}))


def cmd_search_check(args):
    total, entries, size = check_search(local_url(args.audit), auth_token(), args.patient, args.count)
    print(json.dumps({"total": total, "entries": entries, "bytes": size}))


def cmd_verify(args):
    url = local_url(args.audit) + "/chain/verify"
    started = time.monotonic()
    status, _, answer = call("GET", url, None, bearer(auth_token(), accept="application/json"), timeout=args.timeout)
    seconds = time.monotonic() - started
    if status != 200:
        raise Failed(describe("GET", url, status, answer))
    report = json.loads(answer)
    checked = report.get("checked")
    # Identity's outbox may deliver a login event meanwhile: at least the events stored before.
    if report.get("valid") is not True or not isinstance(checked, int) or checked < args.events:
        raise Failed(f"GET {url}: valid {report.get('valid')!r}, {checked!r} events checked "
                     f"(expected {args.events}); problems: {report.get('problems', [])[:3]}")
    anchors = report.get("anchors", {})
    print(json.dumps({"seconds": round(seconds, 3), "checked": report["checked"], "anchors": anchors.get("checked"),
                      "confirmed": anchors.get("confirmedInLedger")}))


def main():
    ap = argparse.ArgumentParser(description="set-up steps and checks for deploy/bench/audit")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("admin-token")
    p.add_argument("--identity", required=True)
    p = sub.add_parser("patients")
    p.add_argument("--identity", required=True)
    p.add_argument("--audit", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--out", required=True)
    p = sub.add_parser("search-check")
    p.add_argument("--audit", required=True)
    p.add_argument("--patient", required=True)
    p.add_argument("--count", type=int, default=50)
    p = sub.add_parser("verify")
    p.add_argument("--audit", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    {"admin-token": cmd_admin_token, "patients": cmd_patients, "search-check": cmd_search_check,
     "verify": cmd_verify}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except (Failed, OSError, ValueError) as e:
        print(f"bench-audit-prep: {e}", file=sys.stderr)
        sys.exit(1)
