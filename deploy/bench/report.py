"""Prints the table of deploy/bench/ledger from its results.env (KEY=value lines)."""

import sys

from benchlib import Results, cpu_table, ms, rate, ratio, table, verdict

R = Results(sys.argv[1])
num, js = R.num, R.js

FAILED = "failed (see results/)"
rows = []
batch_rows_s = None
if num("baseline_batch_tps") is not None:
    batch_rows_s = num("baseline_batch_tps") * int(R.get("baseline_batch_rows", "1000"))
batch_base = f"{rate(batch_rows_s)} rows/s ¹" if batch_rows_s else FAILED

# a. batch append
a = js("append")
rows.append([
    f"a. batch append ({R.get('baseline_batch_rows', '1000')}-entry POSTs, {R.get('append_clients', '?')} clients)",
    f"{rate(a['rate'])} entries/s" if a else FAILED,
    batch_base,
    ratio(a["rate"] / batch_rows_s) if a and batch_rows_s else "–",
    f"≥ 50,000 entries/s: {verdict(a['rate'] >= 50000)}" if a else "≥ 50,000 entries/s",
])

batch1 = num("baseline_batch1_tps")
if batch1 is not None:
    batch1 *= int(R.get("baseline_batch_rows", "1000"))
    rows.append([
        "   a. against a single writer (diagnostic)",
        f"{rate(a['rate'])} entries/s" if a else FAILED,
        f"{rate(batch1)} rows/s ⁴",
        ratio(a["rate"] / batch1) if a else "–",
        "–",
    ])

# b. single-entry POSTs
b = js("post")
rows.append([
    f"b. single-entry POST (wrk, {R.get('post_connections', '?')} connections)",
    f"{rate(b['rps'])} POSTs/s (p50 {ms(b['p50_ms'])}, p99 {ms(b['p99_ms'])})" if b else FAILED,
    batch_base,
    ratio(b["rps"] / batch_rows_s) if b and batch_rows_s else "–",
    f"≥ 5,000/s: {verdict(b['rps'] >= 5000)}" if b else "≥ 5,000/s",
])

# c. time to a covering checkpoint
c = js("checkpoint")
single = num("baseline_single_latency_ms")
rows.append([
    f"c. POST → covering checkpoint ({R.get('checkpoint_clients', '?')} clients, {c['count'] if c else '?'} requests)",
    f"p50 {ms(c['p50_ms'])}, p99 {ms(c['p99_ms'])} (mean {ms(c['mean_ms'])})" if c else FAILED,
    f"{ms(single)} avg ²" if single is not None else FAILED,
    f"×{c['mean_ms'] / single:,.0f} (mean)" if c and single else "–",
    f"p99 ≤ 1 s: {verdict(c['p99_ms'] <= 1000)}" if c else "p99 ≤ 1 s",
])

# d. inclusion proofs
d = js("proof")
size = int(num("proof_size") or 0)
select1 = num("baseline_select1_latency_ms")
rows.append([
    f"d. inclusion proof at {size:,} leaves (wrk, {R.get('proof_connections', '?')} connections)",
    f"p50 {ms(d['p50_ms'])}, p99 {ms(d['p99_ms'])} (mean {ms(d['mean_ms'])}; {rate(d['rps'])} proofs/s)" if d else FAILED,
    f"{ms(select1)} avg ³" if select1 is not None else FAILED,
    f"×{d['mean_ms'] / select1:,.1f} (mean)" if d and select1 else "–",
    f"p99 ≤ 2 ms: {verdict(d['p99_ms'] <= 2)}" if d else "p99 ≤ 2 ms",
])

d1 = js("proof1")
if "proof1_json" in R:
    rows.append([
        "   d. with 1 connection (service time, no queueing)",
        f"p50 {ms(d1['p50_ms'])}, p99 {ms(d1['p99_ms'])} (mean {ms(d1['mean_ms'])}; {rate(d1['rps'])} proofs/s)" if d1 else FAILED,
        f"{ms(select1)} avg ³" if select1 is not None else FAILED,
        f"×{d1['mean_ms'] / select1:,.1f} (mean)" if d1 and select1 else "–",
        f"p99 ≤ 2 ms: {verdict(d1['p99_ms'] <= 2)}" if d1 else "p99 ≤ 2 ms",
    ])

# growing the log for d.
g = js("grow")
if "grow_json" in R:
    rows.append([
        f"   growing the log {int(num('grow_from') or 0):,} → {size:,} leaves",
        f"{g['entries']:,} entries in {g['seconds']:.1f} s ({rate(g['rate'])} entries/s)" if g else FAILED,
        batch_base,
        ratio(g["rate"] / batch_rows_s) if g and batch_rows_s else "–",
        "–",
    ])

print()
print(f"MedLedger ledger benchmark, {R.get('date', '?')}")
print(f"machine: {R.get('machine', '?')}; PostgreSQL {R.get('postgres', '?')}; release build, revision {R.get('revision', '?')}")
print(f"server, database and load clients share this machine; before the run {R.get('busy_before', '?')} cores "
      "were busy with other work")
print()
header = ["metric", "result", "baseline", "ratio to baseline", "orientation target"]
for text in table(header, rows):
    print(text)
print()
bc, bs = R.get("baseline_batch_clients", "?"), R.get("baseline_batch_seconds", "?")
print(f"¹ Raw PostgreSQL insert rate, measured by pgbench in this run on the same cluster: one INSERT of "
      f"{R.get('baseline_batch_rows', '1000')} rows per transaction into a table shaped like the ledger's `leaves` "
      f"(same columns, primary key, unique key, leaf_hash index; ~155-byte JSON data), {bc} clients, {bs} s: "
      f"tps × rows = rows/s (avg {R.get('baseline_batch_latency_ms', '?')} ms per transaction). "
      "Throughput ratios are entries/s ÷ these rows/s. The rows are generated inside PostgreSQL, so the "
      "baseline pays no network transfer, parsing, hashing or idempotency lookups: it is an upper bound.")
print(f"² pgbench average latency of a transaction with one 1-row INSERT of the same shape (one durable "
      f"commit), {R.get('baseline_single_clients', '?')} clients ({rate(num('baseline_single_tps') or 0)} tps). "
      "Ratio: the ledger's mean ÷ this average. The ledger signs a checkpoint every "
      "LEDGER_CHECKPOINT_INTERVAL_MS (200 ms by default), which dominates this row.")
print(f"³ pgbench average latency of `SELECT 1` (one round trip), {R.get('baseline_select1_clients', '?')} clients "
      f"({rate(num('baseline_select1_tps') or 0)} tps). Ratio: the ledger's mean ÷ this average. "
      "pgbench's per-transaction log is not used for percentiles: this pgbench version logs most sub-millisecond "
      "transactions as 0 µs, so only its average is trustworthy.")
print(f"⁴ The same pgbench INSERT of {R.get('baseline_batch_rows', '1000')} rows with 1 client "
      f"(avg {R.get('baseline_batch1_latency_ms', '?')} ms per transaction): the ledger's sequencer writes one "
      "transaction at a time, so this single-writer rate, not ¹, is the ceiling it can approach.")
print()
print("CPU used per phase, in cores of this machine; `other` is the rest of the machine's busy time: other")
print("processes and kernel network processing (softirq), which no process is charged for:")
print()
phases = [("baseline_batch", "baseline ¹ (pgbench)"), ("baseline_batch1", "baseline ⁴ (pgbench)"), ("baseline_single", "baseline ² (pgbench)"),
          ("baseline_select1", "baseline ³ (pgbench)"), ("append", "a. batch append (loadgen)"),
          ("post", "b. single POST (wrk)"), ("checkpoint", "c. wait=checkpoint (loadgen)"),
          ("grow", "growing the log (loadgen)"), ("proof", "d. inclusion proofs (wrk)"),
          ("proof1", "d. proofs, 1 connection (wrk)")]
for text in cpu_table(R, phases, ["ledger"]):
    print(text)
print()
errors = R.get("ledger_log_errors", "?")
print(f"ledger log lines mentioning error/critical: {errors}; measurements took {R.get('bench_seconds', '?')} s")
