"""Prints the table of deploy/bench/records from its results.env (KEY=value lines).

    python bench-records-report.py results.env
"""

import json
import sys

from benchlib import Results, cpu_table, heading, latencies, ms, rate, ratio, table, verdict

R = Results(sys.argv[1])
num, js = R.num, R.js


FAILED = "failed (see results/)"
conns = R.get("connections", "?")
sconns = R.get("search_connections", "?")
rows = []

# a. creates
insert_tps = num("baseline_insert_tps")
a = js("create")
rows.append([
    f"a. DiagnosticReport creates (wrk POST, {conns} connections, {R.get('create_patients', '?')} patients)",
    f"{rate(a['rps'])} creates/s ({latencies(a)})" if a else FAILED,
    f"{rate(insert_tps)} tx/s ¹" if insert_tps else FAILED,
    ratio(a["rps"] / insert_tps) if a and insert_tps else "–",
    f"≥ 50% of baseline: {verdict(a['rps'] >= 0.5 * insert_tps)}" if a and insert_tps else "≥ 50% of baseline",
])

# a'. anchoring
an, lw = js("anchor"), js("ledger_wait")
if "anchor_json" in R:
    pending = int(num("anchor_pending") or 0)
    rows.append([
        f"   a'. create (201) → anchored, {an['rows']:,} versions of a. (ledger outbox, ?wait=checkpoint)" if an else "   a'. anchoring",
        (f"p50 {ms(an['p50_ms'])}, p99 {ms(an['p99_ms'])} (max {ms(an['max_ms'])})" + (f"; {pending} still pending" if pending else ""))
        if an and an.get("rows") else FAILED,
        f"ledger POST ?wait=checkpoint p50 {ms(lw['p50_ms'])}, p99 {ms(lw['p99_ms'])} ⁵" if lw else FAILED,
        f"×{an['p99_ms'] / lw['p99_ms']:,.1f} (p99)" if an and an.get("rows") and lw else "–",
        f"p99 ≤ 2 s: {verdict(an['p99_ms'] <= 2000)}" if an and an.get("rows") else "p99 ≤ 2 s",
    ])

# b. reads
read_tps = num("baseline_read_tps")
b = js("read")
rows.append([
    f"b. DiagnosticReport reads (GET by id, {conns} connections, {int(num('read_ids') or 0):,} ids)",
    f"{rate(b['rps'])} reads/s ({latencies(b)})" if b else FAILED,
    f"{rate(read_tps)} tx/s ²" if read_tps else FAILED,
    ratio(b["rps"] / read_tps) if b and read_tps else "–",
    f"≥ 8,000/s: {verdict(b['rps'] >= 8000)}" if b else "≥ 8,000/s",
])
st = js("records_static")
if "records_static_json" in R or "records_static_ok" in R:
    rows.append([
        f"   b. records GET /health/live, {conns} connections (the same server's cheapest answer)",
        f"{rate(st['rps'])}/s ({latencies(st)})" if st else FAILED,
        f"b.'s reads: {rate(b['rps'])}/s" if b else FAILED,
        ratio(b["rps"] / st["rps"]) if b and st else "–",
        "–",
    ])

# d. $verify
d = js("verify")
if "verify_json" in R or "verify_ok" in R:
    rows.append([
        f"d. $verify (GET …/_history/1/$verify, {conns} connections, the ids of b.)",
        f"{rate(d['rps'])} verifies/s ({latencies(d)})" if d else FAILED,
        f"b.'s reads: {latencies(b)}" if b else FAILED,
        f"×{d['p99_ms'] / b['p99_ms']:,.1f} (p99)" if d and b else "–",
        "–",
    ])

# c. search
stored = int(num("search_stored") or 0)
search_lat = num("baseline_search_latency_ms")
search_lat1 = num("baseline_search1_latency_ms")
for name, label, base, foot in (("search", f"{sconns} connections", search_lat, "³"),
                                ("search1", "1 connection (service time, no queueing)", search_lat1, "⁴")):
    if f"{name}_json" not in R and f"{name}_ok" not in R:
        continue
    c = js(name)
    prefix = "c. search" if name == "search" else "   c. search"
    rows.append([
        f"{prefix} DiagnosticReport?patient=…&_count=20, {stored:,} stored, {label}",
        f"p99 {ms(c['p99_ms'])}, p50 {ms(c['p50_ms'])} (mean {ms(c['mean_ms'])}; {rate(c['rps'])} searches/s)" if c else FAILED,
        f"{ms(base)} avg {foot}" if base is not None else FAILED,
        f"×{c['mean_ms'] / base:,.1f} (mean)" if c and base else "–",
        f"p99 ≤ 20 ms: {verdict(c['p99_ms'] <= 20)}" if c else "p99 ≤ 20 ms",
    ])

# seeding for c.
s = js("seed")
if "seed_json" in R or "seed_ok" in R:
    seeded = stored - int(num("seed_before") or 0)
    rows.append([
        f"   seeding {int(num('seed_target') or 0):,} reports over {R.get('seed_patients', '?')} patients ({conns} connections)",
        f"{seeded:,} reports in {s['seconds']:.1f} s ({rate(s['rps'])} creates/s)" if s else FAILED,
        f"{rate(insert_tps)} tx/s ¹" if insert_tps else FAILED,
        ratio(s["rps"] / insert_tps) if s and insert_tps else "–",
        "–",
    ])

# e. consent
if "decide_json" in R or "decide_ok" in R:
    dc, st = js("decide"), js("consent_static")
    rows.append([
        f"e. consent decisions (POST /decisions, {conns} connections, {R.get('consent_patients', '?')} consents)",
        f"{rate(dc['rps'])} decisions/s ({latencies(dc)})" if dc else FAILED,
        f"consent GET /health/live {rate(st['rps'])}/s ({latencies(st)})" if st else FAILED,
        ratio(dc["rps"] / st["rps"]) if dc and st else "–",
        "–",
    ])
for name, base, label in (("read_consent", "read_assigned", f"read by id, {conns} connections, {int(num('consent_read_ids') or 0):,} ids"),
                          ("search_consent", "search", f"search as in c., {sconns} connections"),
                          ("search1_consent", "search1", "search as in c., 1 connection")):
    if f"{name}_json" not in R and f"{name}_ok" not in R:
        continue
    with_consent, without = js(name), js(base)
    rows.append([
        f"   e. {label}: by consent (consultant) vs assigned doctor",
        f"p99 {ms(with_consent['p99_ms'])}, p50 {ms(with_consent['p50_ms'])} ({rate(with_consent['rps'])}/s)" if with_consent else FAILED,
        f"assigned: p99 {ms(without['p99_ms'])}, p50 {ms(without['p50_ms'])} ({rate(without['rps'])}/s)" if without else FAILED,
        f"{with_consent['p99_ms'] - without['p99_ms']:+,.2f} ms (p99)" if with_consent and without else "–",
        "–",
    ])

out = heading(R, "records")
p = out.append
p("every request carries a user's token and runs through records' access rules (creates and reads: the technologist "
  "who writes the reports; searches: the patients' doctor) and writes an AuditEvent outbox row; every create is "
  "anchored in the ledger (SHA3-256 commitment, ledger outbox row in the same transaction)")
p("")
header = ["metric", "result", "baseline", "ratio to baseline", "orientation target"]
for text in table(header, rows):
    p(text)
p("")
p(f"¹ pgbench in a scratch database of the same cluster, {R.get('baseline_insert_clients', '?')} clients, "
  f"{R.get('baseline_insert_seconds', '?')} s: one transaction per create with one INSERT of a report row (uuid "
  "primary key, patient/status/code/effective columns with three indexes, a 2,048-byte incompressible body as "
  "ciphertext is) and one INSERT of a ~1 KB AuditEvent into an outbox table "
  f"(avg {R.get('baseline_insert_latency_ms', '?')} ms). Ratio: creates/s ÷ tx/s. The rows are made inside "
  "PostgreSQL: no HTTP, JSON, validation, access checks or encryption, and records writes more rows per create "
  "(the version, the current row, one search-index row per search value), so the baseline is an upper bound.")
p(f"² pgbench, {R.get('baseline_read_clients', '?')} clients: a point select of one report row by primary key out "
  f"of {int(num('baseline_rows') or 0):,} (avg {R.get('baseline_read_latency_ms', '?')} ms). Ratio: reads/s ÷ tx/s. "
  "records also decrypts the body, checks access and queues an AuditEvent (group commit) per read.")
p(f"³ pgbench, {R.get('baseline_search_clients', '?')} clients ({rate(num('baseline_search_tps') or 0)} tx/s): a "
  f"random patient's 20 newest rows plus their count, out of {int(num('baseline_rows') or 0):,} rows over "
  f"{R.get('baseline_patients', '?')} patients (the same spread as the seeded reports). Ratio: records' mean ÷ "
  "this average. pgbench's per-transaction log is not used for percentiles: it logs most sub-millisecond "
  "transactions as 0 µs, so only its average is trustworthy.")
p(f"⁴ The same pgbench search with 1 client ({rate(num('baseline_search1_tps') or 0)} tx/s).")
lw = js("ledger_wait")
if lw:
    p(f"⁵ {lw['n']} single-entry POST /entries?wait=checkpoint to the stack's ledger, one at a time: the ledger's own "
      "answer time once a signed checkpoint covers the entry (its checkpoint interval is 200 ms). a'. measures from "
      "the start of a create's transaction to its stored anchor (records' outbox: claimed in batches, sent with "
      "?wait=checkpoint, every proof checked).")
check = R.get("search_check")
if check:
    try:
        c = json.loads(check)
        p(f"Search answers checked before the phase: a patient with {c['total']} reports gives a searchset with "
          f"{c['entries']} entries and the total ({c['bytes']:,} bytes).")
    except (ValueError, KeyError):
        pass
p("")
p("CPU used per phase, in cores of this machine; `other` is the rest of the machine's busy time: identity, the")
p("ledger (anchoring the creates), other processes and kernel network processing (softirq), which no process is")
p("charged for:")
p("")
phases = [("baseline_insert", "baseline ¹ (pgbench)"), ("baseline_read", "baseline ² (pgbench)"),
          ("baseline_search", "baseline ³ (pgbench)"), ("baseline_search1", "baseline ⁴ (pgbench)"),
          ("create", "a. creates (wrk)"), ("read", "b. reads (wrk)"), ("records_static", "b. records /health/live (wrk)"),
          ("verify", "d. $verify (wrk)"), ("seed", "seeding (wrk)"),
          ("search", "c. search (wrk)"), ("search1", "c. search, 1 connection (wrk)"),
          ("decide", "e. consent decisions (wrk)"), ("consent_static", "e. consent /health/live (wrk)"),
          ("read_assigned", "e. reads, assigned doctor (wrk)"), ("read_consent", "e. reads, by consent (wrk)"),
          ("search_consent", "e. search, by consent (wrk)"), ("search1_consent", "e. search, by consent, 1 connection (wrk)")]
for text in cpu_table(R, phases, ["records"]):
    p(text)
p("")
p(f"records log lines mentioning error/critical: {R.get('records_log_errors', '?')}; "
  f"measurements took {R.get('bench_seconds', '?')} s (set-up {R.get('setup_seconds', '?')} s, "
  f"{R.get('patients_created', '?')} patients)")
print("\n".join(out))
