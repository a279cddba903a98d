"""Load client, notification receiver and checks for deploy/bench/subscriptions (Python standard
library only).

    python bench-subscriptions.py subscribe --records URL --patient ID
        as the caller of $BENCH_AUTH ("Bearer …", the patient's doctor) creates a rest-hook
        Subscription to DiagnosticReport?patient=Patient/ID&status=final, payload full-resource,
        with the channel header `Authorization: Bearer $BENCH_RECEIVER_SECRET`, to
        http://127.0.0.1:PORT/hook on a port free now; checks the answer (201, status active).
        Prints {"id", "port"}.
    python bench-subscriptions.py burst --records URL --patient ID --performer REF --reports N
                                        --clients C --prefix P [--subscription ID --port PORT --timeout S]
        N `final` DiagnosticReports of Patient/ID created by the caller of $BENCH_AUTH over C
        keep-alive connections, as fast as records answers; each must answer 201. With
        --subscription, a receiver (`receive`, a child process) listens on 127.0.0.1:PORT first,
        and after the last create the command waits (at most S seconds) until every report has
        arrived there. Prints one JSON line: creates/s and the create requests' p50/p99, and with
        a receiver the notifications/s, the time from each report's 201 (as this client read it)
        to its notification's arrival (p50/p99/max), the drain time after the last 201, and
        duplicates (at-least-once). Exit status 1 when a create failed, a notification was
        malformed or missing, or event numbers are not one per report in sequence.
    python bench-subscriptions.py receive --port PORT --subscription ID --out FILE
        the receiver: answers every POST /hook with 200 and appends one JSON line per
        notification to FILE: arrival time, event number, report id and version, body size, and
        what is wrong with it (header, signature shape, Bundle, payload), if anything. Prints
        "ready" once it listens.
    python bench-subscriptions.py status --records URL --subscription ID --events N
        the Subscription's $status must say `active` with N events delivered and no error; prints
        {"status", "events", "error"}.

Secrets come from the environment only. Every request has a timeout; every target is 127.0.0.1.
Exit status 1 with a message on stderr when a check fails.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from benchlib import FHIR_JSON, Failed, auth_token, bearer, call, describe, env, local_url, percentiles, report_body

CRITERIA = "DiagnosticReport?patient=Patient/{patient}&status=final"
SIGNATURE = re.compile(r"^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$")   # detached compact JWS
FOCUS = re.compile(r"/DiagnosticReport/([A-Za-z0-9.-]{1,64})/_history/([1-9][0-9]*)$")
POLL_SECONDS = 0.05


def die(msg):
    print(f"bench-subscriptions: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver_header():
    return "Bearer " + env("BENCH_RECEIVER_SECRET")


def cmd_subscribe(args):
    records = local_url(args.records)
    port = free_port()
    body = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "deploy/bench/subscriptions",
        "criteria": CRITERIA.format(patient=args.patient),
        "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{port}/hook", "payload": FHIR_JSON,
                    "header": [f"Authorization: {receiver_header()}"]},
    }
    url = f"{records}/fhir/Subscription"
    status, _, answer = call("POST", url, json.dumps(body).encode(), bearer(auth_token(), FHIR_JSON))
    stored = json.loads(answer) if status == 201 else {}
    if stored.get("status") != "active" or not stored.get("id"):
        die("the Subscription was not created active: " + describe("POST", url, status, answer))
    print(json.dumps({"id": stored["id"], "port": port}))


# --------------------------------------------------------------------------- receiver


def check_notification(headers, body, subscription):
    """(event number, report id, version, problem or None) of one POST to the receiver."""
    number = headers.get("X-MedLedger-Event-Number", "")
    problems = []
    if not number.isdigit():
        problems.append(f"X-MedLedger-Event-Number {number!r}")
    if headers.get("X-MedLedger-Subscription") != subscription:
        problems.append(f"X-MedLedger-Subscription {headers.get('X-MedLedger-Subscription')!r}")
    if not SIGNATURE.match(headers.get("X-MedLedger-Signature", "")):
        problems.append("no detached JWS in X-MedLedger-Signature")
    if headers.get("Authorization") != receiver_header():
        problems.append("the channel header is missing")
    if not headers.get("Content-Type", "").startswith(FHIR_JSON):
        problems.append(f"Content-Type {headers.get('Content-Type')!r}")
    rid = version = None
    try:
        bundle = json.loads(body)
        entries = bundle["entry"]
        status = {p["name"]: p for p in entries[0]["resource"]["parameter"]}
        event = {p["name"]: p for p in status["notification-event"]["part"]}
        if bundle["type"] != "history" or event["event-number"]["valueString"] != number:
            problems.append("not a history Bundle with this event number")
        found = FOCUS.search(entries[1]["fullUrl"])
        rid, version = found.group(1), found.group(2)
        report = entries[1]["resource"]
        if report["id"] != rid or report["meta"]["versionId"] != version or report["status"] != "final":
            problems.append("the payload is not the final report version the fullUrl names")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        problems.append(f"not a full-resource notification Bundle ({type(e).__name__}: {e})")
    return (int(number) if number.isdigit() else None), rid, version, "; ".join(problems) or None


def cmd_receive(args):
    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")

    class Hook(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as a real receiver

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            number, rid, version, problem = check_notification(self.headers, body, args.subscription)
            if self.path != "/hook":
                problem = f"POST {self.path}"
            line = json.dumps({"t": arrived, "n": number, "id": rid, "v": version, "bytes": len(body), "bad": problem})
            with lock:
                out.write(line + "\n")
                out.flush()

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Hook)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


def start_receiver(args, path):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "receive", "--port", str(args.port),
                             "--subscription", args.subscription, "--out", path], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        die(f"the receiver did not start on 127.0.0.1:{args.port}")
    return proc


def arrivals(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


# --------------------------------------------------------------------------- load


def creates(args, token):
    """Creates the reports over --clients keep-alive connections: {id: (sent, answered)} and the
    failures."""
    parts = urllib.parse.urlsplit(local_url(args.records))
    headers = bearer(token, FHIR_JSON)
    answered, failures = {}, []
    lock = threading.Lock()
    counter = iter(range(args.reports))

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None or len(failures) >= 10:
                break
            body = json.dumps(report_body(args.patient, args.performer, "final", f"{args.prefix}-{i}")).encode()
            sent = time.time()
            try:
                conn.request("POST", "/fhir/DiagnosticReport", body, headers)
                r = conn.getresponse()
                answer = r.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                with lock:
                    failures.append(f"POST /fhir/DiagnosticReport: {e}")
                continue
            done = time.time()
            rid = json.loads(answer).get("id") if r.status == 201 else None
            with lock:
                if rid:
                    answered[rid] = (sent, done)
                else:
                    failures.append(describe("POST", "/fhir/DiagnosticReport", r.status, answer))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answered, failures


def cmd_burst(args):
    token = auth_token()
    path = None
    receiver = None
    if args.subscription:
        path = os.path.join(args.work_dir, f"arrivals-{args.prefix}.jsonl")
        open(path, "w").close()
        receiver = start_receiver(args, path)
    try:
        started = time.time()
        answered, failures = creates(args, token)
        if failures:
            die(f"{len(failures)} creates failed, e.g. {failures[0]}")
        done = [d for _, d in answered.values()]
        result = {"reports": len(answered), "clients": args.clients, "seconds": round(max(done) - started, 3),
                  "rate": round(len(answered) / (max(done) - started), 1),
                  **percentiles([(d - s) * 1000 for s, d in answered.values()])}
        if receiver:
            result.update(deliveries(args, path, answered, started))
    finally:
        if receiver:
            receiver.terminate()
            receiver.wait(timeout=10)
    print(json.dumps(result))


def deliveries(args, path, answered, started):
    """Waits for every report's notification; the delivery figures of the burst."""
    deadline = time.monotonic() + args.timeout
    while True:
        seen = arrivals(path)
        got = {a["id"] for a in seen if a["id"] in answered}
        if len(got) == len(answered) or any(a["bad"] for a in seen) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    bad = [a["bad"] for a in seen if a["bad"]]
    if bad:
        die(f"{len(bad)} malformed notifications, e.g. {bad[0]}")
    if len(got) < len(answered):
        die(f"only {len(got)} of {len(answered)} reports were notified within {args.timeout} s")
    first = {}
    for a in seen:   # the first arrival of each report; later ones are at-least-once duplicates
        if a["id"] in answered and a["id"] not in first:
            first[a["id"]] = a
    numbers = sorted(a["n"] for a in first.values())
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        die(f"event numbers are not one per report in sequence: {numbers[:5]}…{numbers[-5:]}")
    strays = [a for a in seen if a["id"] not in answered]
    if strays:
        die(f"{len(strays)} notifications of reports this burst did not write, e.g. {strays[0]}")
    last_answer = max(d for _, d in answered.values())
    last_arrival = max(a["t"] for a in first.values())
    latency = percentiles([(a["t"] - answered[a["id"]][1]) * 1000 for a in first.values()])
    return {
        "delivered": len(first),
        "duplicates": len(seen) - len(first),
        "events": [numbers[0], numbers[-1]],
        "delivery_rate": round(len(first) / (last_arrival - started), 1),
        "drain_ms": round((last_arrival - last_answer) * 1000, 1),
        "bytes": round(sum(a["bytes"] for a in first.values()) / len(first)),
        "delivery": latency,
    }


def cmd_status(args):
    records = local_url(args.records)
    url = f"{records}/fhir/Subscription/{args.subscription}/$status"
    status, _, answer = call("GET", url, None, bearer(auth_token()))
    if status != 200:
        die(describe("GET", url, status, answer))
    params = {}
    for p in json.loads(answer).get("parameter", []):
        params.setdefault(p.get("name"), p)
    state = params.get("status", {}).get("valueCode")
    events = params.get("events-since-subscription-start", {}).get("valueString")
    error = params.get("error", {}).get("valueString")
    print(json.dumps({"status": state, "events": events, "error": error}))
    if state != "active" or events != str(args.events) or error:
        die(f"$status: expected active with {args.events} events and no error, got {state}, {events}, {error!r}")


def main():
    ap = argparse.ArgumentParser(description="load client and receiver for deploy/bench/subscriptions")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("subscribe")
    p.add_argument("--records", required=True)
    p.add_argument("--patient", required=True)
    p = sub.add_parser("burst")
    p.add_argument("--records", required=True)
    p.add_argument("--patient", required=True)
    p.add_argument("--performer", required=True)
    p.add_argument("--reports", type=int, required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--subscription")
    p.add_argument("--port", type=int)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--work-dir", default=".")
    p = sub.add_parser("receive")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--subscription", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("status")
    p.add_argument("--records", required=True)
    p.add_argument("--subscription", required=True)
    p.add_argument("--events", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "burst" and (args.reports < 1 or args.clients < 1 or bool(args.subscription) != bool(args.port)):
        die("burst: --reports and --clients must be at least 1, and --subscription comes with --port")
    {"subscribe": cmd_subscribe, "burst": cmd_burst, "receive": cmd_receive, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        die(str(e))
