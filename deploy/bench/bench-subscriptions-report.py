"""Prints the table of deploy/bench/subscriptions from its results.env (KEY=value lines).

    python bench-subscriptions-report.py results.env
"""

import sys

from benchlib import Results, cpu_table, heading, latencies, memory, mib, ms, rate, ratio, table

R = Results(sys.argv[1])
js = R.js

FAILED = "failed (see results/)"
clients, reports, serial = R.get("clients", "?"), int(R.num("reports") or 0), int(R.num("serial_reports") or 0)
base_burst, base_serial, burst, one = js("baseline_burst"), js("baseline_serial"), js("burst"), js("serial")
rows = []


def creates(d):
    return f"{rate(d['rate'])} creates/s ({latencies(d)})" if d else FAILED


rows.append([
    f"a. creates of final reports, {reports:,} over {clients} connections, matching the Subscription",
    creates(burst),
    f"{creates(base_burst)} ¹",
    ratio(burst["rate"] / base_burst["rate"]) if burst and base_burst else "–",
])
rows.append([
    f"   notifications/s delivered (burst start → last arrival; {burst['duplicates']} duplicates)" if burst
    else "   notifications/s delivered",
    f"{rate(burst['delivery_rate'])}/s ({burst['delivered']:,} notifications of ~{burst['bytes']:,} bytes)" if burst else FAILED,
    f"creates/s of the same burst: {rate(burst['rate'])}" if burst else "–",
    ratio(burst["delivery_rate"] / burst["rate"]) if burst else "–",
])
rows.append([
    "   201 → notification arrived, the same burst (events of one Subscription go out in order)",
    f"{latencies(burst['delivery'])} (max {ms(burst['delivery']['max_ms'])}; drain after the last 201 "
    f"{ms(burst['drain_ms'])})" if burst else FAILED,
    f"the create request itself: {latencies(burst)}" if burst else "–",
    f"×{burst['delivery']['p99_ms'] / burst['p99_ms']:,.1f} (p99)" if burst and burst["p99_ms"] > 0 else "–",
])
rows.append([
    f"b. creates one at a time ({serial:,}, 1 connection), matching the Subscription",
    creates(one),
    f"{creates(base_serial)} ¹",
    ratio(one["p50_ms"] / base_serial["p50_ms"]) + " (p50)" if one and base_serial else "–",
])
rows.append([
    "   201 → notification arrived, one at a time (no queue)",
    f"{latencies(one['delivery'])} (max {ms(one['delivery']['max_ms'])})" if one else FAILED,
    f"the create request itself: {latencies(one)}" if one else "–",
    f"×{one['delivery']['p50_ms'] / one['p50_ms']:,.1f} (p50)" if one and one["p50_ms"] > 0 else "–",
])
records_memory = memory(R).get("records")
if records_memory:
    rows.append(["   records process memory at the end", f"RSS {mib(records_memory[0])} (peak {mib(records_memory[1])})",
                 "–", "–"])

out = heading(R, "Subscriptions")
p = out.append
p("the patient's doctor creates `final` DiagnosticReports (~1 KB); one rest-hook Subscription of the doctor "
  "(DiagnosticReport?patient=…&status=final, payload full-resource) delivers each to a receiver on 127.0.0.1 "
  "(a threaded Python http.server answering 200); every create also writes its ledger and audit outbox rows, and "
  "every delivery is access-checked, signed (Ed25519 JWS) and audited")
p("")
for text in table(["metric", "result", "baseline", "ratio to baseline"], rows):
    p(text)
p("")
p("¹ The same creates by the same client in the same run, before the Subscription existed (no Subscription "
  "anywhere in the stack). The time to a notification runs from the moment the load client read the create's "
  "201 to the moment the receiver had read the notification's body (one clock: both run on this machine); "
  "records may send the notification before the client has read its 201, so small values can be negative.")
st = js("status")
if st:
    p(f"Afterwards $status said `{st['status']}`, {int(st['events']):,} events delivered, no error; every "
      "notification carried the subscription's headers, a detached JWS and the report version, and each report "
      "got one event number, in sequence.")
elif "status_ok" in R:
    p("**$status after the run was not `active` with every event delivered (see results/).**")
p("")
p("CPU used per phase, in cores of this machine; `load client` includes the receiver; `other` is the rest of")
p("the machine's busy time: identity, consent, the ledger, other processes and kernel network processing:")
p("")
phases = [("baseline_burst", f"¹ creates, {clients} connections, no Subscription"),
          ("baseline_serial", "¹ creates one at a time, no Subscription"),
          ("burst", f"a. creates + notifications, {clients} connections"),
          ("serial", "b. creates + notifications, one at a time")]
for text in cpu_table(R, phases, ["records", "audit"]):
    p(text)
p("")
p(f"records log lines mentioning error/critical: {R.get('records_log_errors', '?')}; "
  f"measurements took {R.get('bench_seconds', '?')} s")
print("\n".join(out))
