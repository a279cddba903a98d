"""Prints the table of deploy/bench/audit from its results.env (KEY=value lines)."""

import json
import sys

from benchlib import Results, cpu_table, heading, latencies, memory, mib, ms, rate, ratio, table

R = Results(sys.argv[1])
num, js = R.num, R.js

FAILED = "failed (see results/)"
conns, qconns, batch = R.get("connections", "?"), R.get("query_connections", "?"), R.get("batch", "?")
rows = []


def tps_rows(name, per):
    """A pgbench append baseline in rows/s (transactions × rows per transaction)."""
    tps = num(f"{name}_tps")
    return tps * per if tps is not None else None


# 1. ingest
batch_base = tps_rows("baseline_batch", int(num("batch") or 0))
single_base = tps_rows("baseline_single", 1)
for name, base, label, foot in (("ingest_batch", batch_base, f"{batch} events per POST", "¹"),
                                ("ingest_single", single_base, "1 event per POST", "²")):
    d = js(name)
    rows.append([
        f"1. ingest POST /events, {label}, {conns} connections",
        f"{rate(d['rate'])} events/s ({latencies(d)} per request)" if d else FAILED,
        f"{rate(base)} rows/s {foot}" if base else FAILED,
        ratio(d["rate"] / base) if d and base else "–",
    ])

# 2. seeding
s = js("seed")
stored = int(num("query_events") or 0)
if "seed_json" not in R and num("seed_before") is not None:
    rows.append([f"2. seeding to {int(num('seed_target') or 0):,} events", f"none needed: phase 1 stored {stored:,}", "–", "–"])
if "seed_json" in R:
    rows.append([
        f"2. seeding to {int(num('seed_target') or 0):,} events ({batch} per POST, {conns} connections)",
        f"{s['entries']:,} events in {s['seconds']:.1f} s ({rate(s['rate'])} events/s)" if s else FAILED,
        f"{rate(batch_base)} rows/s ¹" if batch_base else FAILED,
        ratio(s["rate"] / batch_base) if s and batch_base else "–",
    ])

# 3. queries
for name, who, c, base in (("query_patient", f"the patient ({R.get('patient_accounts', '?')} accounts)", qconns, "baseline_query"),
                           ("query_patient1", "the patient", "1", "baseline_query1"),
                           ("query_admin", f"the admin ({R.get('patients', '?')} patients)", qconns, "baseline_query"),
                           ("query_admin1", "the admin", "1", "baseline_query1")):
    d = js(name)
    sql = num(f"{base}_latency_ms")
    health = js("health" if c != "1" else "health1")
    baseline = []
    if sql is not None:
        baseline.append(f"SQL {ms(sql)} avg ³")
    if health:
        baseline.append(f"/health/live {latencies(health)} ⁴")
    rows.append([
        f"3. last 50 events as {who}, {c} connection{'s' if c != '1' else ''}, {stored:,} stored",
        f"{latencies(d)} (mean {ms(d['mean_ms'])}; {rate(d['rps'])} searches/s)" if d else FAILED,
        "; ".join(baseline) or FAILED,
        f"×{d['mean_ms'] / sql:,.1f} (mean ÷ SQL avg)" if d and sql else "–",
    ])

# 4. verification and memory
v = js("verify")
if "verify_json" in R:
    rows.append([
        "4. GET /chain/verify, whole chain",
        f"{v['seconds']:.1f} s for {v['checked']:,} events ({rate(v['checked'] / v['seconds'])} events/s; "
        f"{v['anchors']} anchors, {v['confirmed']} confirmed in the ledger)" if v else FAILED,
        "–", "–",
    ])
audit_memory = memory(R).get("audit")
if audit_memory:
    db = num("audit_db_bytes")
    rows.append([
        "   audit process memory at the end",
        f"RSS {mib(audit_memory[0])} (peak {mib(audit_memory[1])})",
        f"audit database {db / 2**20:,.0f} MiB" if db else "–",
        "–",
    ])

out = heading(R, "audit")
p = out.append
p("events: ~1.3 KB AuditEvents shaped like records' read events, each about one of "
  f"{R.get('patients', '?')} patients, with its own idempotency key, sent with the stack's script client token "
  "(scope medledger/audit.write); audit validates, canonicalises (RFC 8785), chains (SHA3-256) and indexes each, "
  "and anchors the chain head in the ledger every 10 s")
p("")
for text in table(["metric", "result", "baseline", "ratio to baseline"], rows):
    p(text)
p("")
p(f"¹ pgbench in a scratch database of the same cluster with a copy of audit's schema (pg_dump --schema-only), "
  f"{R.get('baseline_batch_clients', '?')} clients, {R.get('baseline_batch_seconds', '?')} s: one chain append per "
  f"transaction as audit's writer makes it (lock the head row FOR UPDATE, look the batch's idempotency keys up, "
  f"insert {batch} events into audit_events, with its unique key, date and four GIN indexes, and their "
  "audit_patient_events rows, move the head), in stored form "
  f"(avg {R.get('baseline_batch_latency_ms', '?')} ms per transaction). Rows/s = tx/s × rows. The rows are made "
  "inside PostgreSQL: no HTTP, JSON parsing, validation, canonicalisation or SHA3 chaining, so it is an upper bound.")
p(f"² The same with 1 row per transaction, {R.get('baseline_single_clients', '?')} clients "
  f"(avg {R.get('baseline_single_latency_ms', '?')} ms): what one append per request costs. audit commits "
  "concurrent requests together (group commit), so it can pass this.")
p(f"³ pgbench, read-only on audit's own database after seeding ({R.get('baseline_query_clients', '?')} clients: "
  f"{rate(num('baseline_query_tps') or 0)} tx/s; 1 client: {rate(num('baseline_query1_tps') or 0)} tx/s): audit's "
  "search SQL for a random patient (51 newest rows of audit_patient_events joined to audit_events, and their count). "
  "pgbench's per-transaction log is not used for percentiles: it logs most sub-millisecond transactions as 0 µs, "
  "so only its average is trustworthy.")
p("⁴ audit's GET /health/live with the same connections: the same HTTP server's cheapest answer.")
for key, who in (("patient_check", "each patient account"), ("admin_check", "the admin")):
    try:
        c = json.loads(R[key])
    except (KeyError, ValueError):
        continue
    if "entries" in c:
        p(f"Checked before the phase, as {who}: a searchset of {c['entries']} events of one patient, newest first, "
          f"with the total ({c['total']:,} events, {c['bytes']:,} bytes).")
    else:
        p(f"Checked before the phase, as {who}: {c['accounts']} patient accounts each see their own "
          f"{c['events_min']:,}–{c['events_max']:,} events, newest first, and none of another patient's.")
if R.get("vacuum_seconds"):
    p(f"After seeding, VACUUM ANALYZE of the chain's tables took {R['vacuum_seconds']} s (autovacuum would run it "
      "soon; done before the queries so that it does not run during them).")
p("")
p("CPU used per phase, in cores of this machine; `other` is the rest of the machine's busy time: identity, the")
p("ledger, other processes and kernel network processing (softirq), which no process is charged for:")
p("")
phases = [("baseline_batch", "baseline ¹ (pgbench)"), ("baseline_single", "baseline ² (pgbench)"),
          ("ingest_batch", f"1. ingest, {batch} per POST (loadgen)"), ("ingest_single", "1. ingest, 1 per POST (loadgen)"),
          ("seed", "2. seeding (loadgen)"),
          ("query_patient", f"3. as patients, {qconns} connections (wrk)"), ("query_patient1", "3. as patients, 1 connection (wrk)"),
          ("query_admin", f"3. as the admin, {qconns} connections (wrk)"), ("query_admin1", "3. as the admin, 1 connection (wrk)"),
          ("health", f"baseline ⁴, {qconns} connections (wrk)"), ("health1", "baseline ⁴, 1 connection (wrk)"),
          ("baseline_query", f"baseline ³, {qconns} clients (pgbench)"), ("baseline_query1", "baseline ³, 1 client (pgbench)"),
          ("verify", "4. /chain/verify (client)")]
for text in cpu_table(R, phases, ["audit"]):
    p(text)
p("")
p(f"audit log lines mentioning error/critical: {R.get('audit_log_errors', '?')}; "
  f"measurements took {R.get('bench_seconds', '?')} s")
print("\n".join(out))
