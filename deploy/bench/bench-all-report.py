"""Writes docs/benchmarks.md for deploy/bench/all: the headline table (each metric beside the
baselines its own benchmark measured in the same run), every service's memory, then each
benchmark's full table.

    python bench-all-report.py --machine machine.env --records DIR --ledger DIR --audit DIR --subscriptions DIR

Each DIR holds a benchmark's results.env and table.md.
"""

import argparse
from pathlib import Path

from benchlib import Results, latencies, memory, mib, ms, rate, ratio, table

FAILED = "failed (see the benchmark's table)"

args = argparse.ArgumentParser()
for name in ("machine", "records", "ledger", "audit", "subscriptions"):
    args.add_argument(f"--{name}", required=True)
args = args.parse_args()

M = Results(args.machine)
runs = {name: (Results(Path(getattr(args, name)) / "results.env"), Path(getattr(args, name)) / "table.md")
        for name in ("records", "ledger", "audit", "subscriptions")}
rec, led, aud, sub = (runs[n][0] for n in ("records", "ledger", "audit", "subscriptions"))


def per_second(d, key, unit):
    return f"{rate(d[key])} {unit} ({latencies(d)})" if d else FAILED


def pg_rows(R, name, rows_per_tx=1):
    tps = R.num(f"{name}_tps")
    return tps * rows_per_tx if tps is not None else None


rows = []

# records: creates, reads, search, anchoring
conns = rec.get("connections", "?")
static = rec.js("records_static")
static_text = f"records: {rate(static['rps'])}/s ({conns} connections)" if static else FAILED
for name, label, unit, base_name, base_shape in (
        ("create", f"creates/s (records, {conns} connections)", "creates/s", "insert", "one report row + one audit outbox row"),
        ("read", f"reads/s (GET by id, {conns} connections)", "reads/s", "read", "point select by primary key")):
    d, tps = rec.js(name), rec.num(f"baseline_{base_name}_tps")
    rows.append([
        f"DiagnosticReport {label}",
        per_second(d, "rps", unit),
        f"{rate(tps)} tx/s ({base_shape})" if tps else FAILED,
        static_text,
        ratio(d["rps"] / tps) if d and tps else "–",
    ])
stored = int(rec.num("search_stored") or 0)
for name, label in (("search", f"{rec.get('search_connections', '?')} connections"), ("search1", "1 connection")):
    d, base = rec.js(name), rec.num(f"baseline_{name}_latency_ms")
    rows.append([
        f"search p99, patient=…&_count=20 at {stored:,} reports ({label})",
        f"p99 {ms(d['p99_ms'])} (p50 {ms(d['p50_ms'])}, {rate(d['rps'])}/s)" if d else FAILED,
        f"{ms(base)} avg (20 newest rows + count)" if base is not None else FAILED,
        "–",
        f"×{d['mean_ms'] / base:,.1f} (mean)" if d and base else "–",
    ])
anchor, wait = rec.js("anchor"), rec.js("ledger_wait")
rows.append([
    f"create → anchored p99 ({anchor['rows']:,} versions)" if anchor else "create → anchored p99",
    f"p99 {ms(anchor['p99_ms'])} (p50 {ms(anchor['p50_ms'])})" if anchor and anchor.get("rows") else FAILED,
    f"ledger's own POST ?wait=checkpoint p99 {ms(wait['p99_ms'])}" if wait else FAILED,
    "–",
    f"×{anchor['p99_ms'] / wait['p99_ms']:,.1f} (p99)" if anchor and anchor.get("rows") and wait else "–",
])

# ledger: appends
batch_rows = int(led.get("baseline_batch_rows", "1000"))
append, post = led.js("append"), led.js("post")
batch_base = pg_rows(led, "baseline_batch", batch_rows)
single_base = pg_rows(led, "baseline_single")
rows.append([
    f"ledger appends/s ({batch_rows}-entry POSTs, {led.get('append_clients', '?')} clients)",
    f"{rate(append['rate'])} entries/s" if append else FAILED,
    f"{rate(batch_base)} rows/s ({batch_rows}-row INSERTs)" if batch_base else FAILED,
    "–",
    ratio(append["rate"] / batch_base) if append and batch_base else "–",
])
rows.append([
    f"ledger appends/s (1-entry POSTs, {led.get('post_connections', '?')} connections)",
    per_second(post, "rps", "entries/s"),
    f"{rate(single_base)} rows/s (1-row INSERT commits)" if single_base else FAILED,
    "–",
    ratio(post["rps"] / single_base) if post and single_base else "–",
])

# audit: ingest (audit's /health/live was measured at its query connections)
health = aud.js("health")
audit_static = (f"audit: {rate(health['rps'])}/s ({aud.get('query_connections', '?')} connections)"
                if health else "–")
abatch = int(aud.num("batch") or 0)
for name, base_name, per, label in (("ingest_batch", "baseline_batch", abatch, f"{abatch} events per POST"),
                                    ("ingest_single", "baseline_single", 1, "1 event per POST")):
    d, base = aud.js(name), pg_rows(aud, base_name, per)
    rows.append([
        f"audit ingest/s ({label}, {aud.get('connections', '?')} connections)",
        f"{rate(d['rate'])} events/s ({latencies(d)} per request)" if d else FAILED,
        f"{rate(base)} rows/s (the same chain append in SQL)" if base else FAILED,
        audit_static,
        ratio(d["rate"] / base) if d and base else "–",
    ])

# subscriptions: notifications/s and final report → notification, beside the same creates without one
burst, base = sub.js("burst"), sub.js("baseline_burst")
rows.append([
    f"notifications/s (rest-hook, full-resource, {sub.get('clients', '?')} connections creating final reports)",
    f"{rate(burst['delivery_rate'])} notifications/s ({rate(burst['rate'])} creates/s)" if burst else FAILED,
    "–",
    f"the same creates without a Subscription: {rate(base['rate'])}/s ({latencies(base)})" if base else FAILED,
    ratio(burst["rate"] / base["rate"]) + " (creates/s)" if burst and base else "–",
])
for name, label in (("burst", "in that burst"), ("serial", "one report at a time")):
    d, base = sub.js(name), sub.js(f"baseline_{name}")
    rows.append([
        f"final report (201) → notification p99, {label}",
        f"p99 {ms(d['delivery']['p99_ms'])} (p50 {ms(d['delivery']['p50_ms'])})" if d else FAILED,
        "–",
        f"the create itself without a Subscription: {latencies(base)}" if base else FAILED,
        f"×{d['delivery']['p99_ms'] / base['p99_ms']:,.1f} (p99)" if d and base and base["p99_ms"] > 0 else "–",
    ])

# memory: each service's peak over each benchmark (only the services that benchmark ran)
services = ["identity", "records", "consent", "audit", "ledger"]
mem = {name: memory(R) for name, (R, _) in runs.items()}
mem_rows = []
for service in services:
    cells = [f"{mib(mem[run][service][1])} (now {mib(mem[run][service][0])})" if service in mem[run] else "–"
             for run in runs]
    mem_rows.append([service] + cells)

out = []
p = out.append
p("# Benchmarks")
p("")
p("Written by `deploy/bench/all` (see its `--help`), which runs `deploy/bench/records`, `deploy/bench/ledger`,")
p("`deploy/bench/audit` and `deploy/bench/subscriptions` one after another, each on its own fresh stack of release")
p("binaries, and measures every baseline in the same run on the same machine. Nothing here is asserted by a test:")
p("these machines are noisy, and the load clients, PostgreSQL and all services share the same cores.")
if rec.get("mode") == "quick":
    p("")
    p("**QUICK MODE: a smoke run of every step, not a measurement.**")
p("")
p("## Machine")
p("")
p(f"- {rec.get('machine', '?')} ({M.get('memory', '?')})")
p(f"- {M.get('os', '?')}")
p(f"- Swift {M.get('swift', '?')} (release build), PostgreSQL {rec.get('postgres', '?')}, wrk {M.get('wrk', '?')}")
p(f"- revision {rec.get('revision', '?')}; runs started {rec.get('date', '?')} (records), {led.get('date', '?')} (ledger), "
  f"{aud.get('date', '?')} (audit), {sub.get('date', '?')} (subscriptions)")
p(f"- busy before each run (cores in use by other work): records {rec.get('busy_before', '?')}, "
  f"ledger {led.get('busy_before', '?')}, audit {aud.get('busy_before', '?')}, subscriptions {sub.get('busy_before', '?')}")
p("")
p("## Headline results")
p("")
out += table(["metric", "result", "baseline: PostgreSQL (pgbench, same-shaped SQL)",
              "baseline: the same server (GET /health/live; Subscriptions: the same creates without one)", "ratio"], rows)
p("")
p("Ratios are result ÷ pgbench baseline (for latencies: result ÷ baseline; for Subscriptions: the same creates")
p("without a Subscription, measured in the same run by the same client). The pgbench baselines make the rows")
p("inside PostgreSQL, with no HTTP, JSON, validation, access checks, encryption or hashing, so they are upper")
p("bounds. Every request of every phase carries a real token and its answer's status is checked; a phase with")
p("any unexpected answer reports `failed`.")
p("")
p("## Memory (RSS) per service")
p("")
p("Peak resident set (VmHWM) of each service process over each benchmark, i.e. under its load, and the")
p("resident set when the benchmark ended; `–`: the service did not run in that benchmark.")
p("")
out += table(["service"] + [f"{run} benchmark" for run in runs], mem_rows)
for name, (_, table_md) in runs.items():
    p("")
    p(f"## {name} benchmark (`deploy/bench/{name}`)")
    p("")
    p(table_md.read_text(encoding="utf-8").strip("\n") if table_md.exists() else FAILED)
print("\n".join(out))
