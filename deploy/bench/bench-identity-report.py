"""Prints the table of deploy/bench/identity from its results.env (KEY=value lines).

    python bench-identity-report.py results.env [--json table.json]

Markdown goes to stdout; with --json the same rows (numbers unformatted) go to that file.
"""

import argparse
import json
import sys

from benchlib import Results, cpu, cpu_table, table

ap = argparse.ArgumentParser()
ap.add_argument("results")
ap.add_argument("--json", dest="json_path")
ARGS = ap.parse_args()


R = Results(ARGS.results)
num, js = R.num, R.js


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ms(x):
    return "–" if x is None else f"{fmt(x)} ms"


FAILED = "failed"
NPROC = int(num("nproc") or 1)
COSTS = [int(c) for c in R.get("costs", "12").split()]
CONNS = [int(c) for c in R.get("connections", "1 8").split()]
MAXC = int(num("max_connections") or max(CONNS))
rows = []  # dicts: metric, value, unit, baseline, baseline_unit, baseline_what, ratio, note


def row(metric, value, unit, baseline=None, baseline_unit="", baseline_what="", note="", failed=False):
    ratio = value / baseline if value is not None and baseline else None
    rows.append({
        "metric": metric, "value": value, "unit": unit, "baseline": baseline, "baseline_unit": baseline_unit,
        "baseline_what": baseline_what, "ratio": ratio, "note": note, "failed": failed,
    })


def rate_of(data):
    return data["rps"] if data else None


def cpu_per_request_us(name, part):
    """CPU time of one process part per answered request of a wrk phase, in µs."""
    data, c = js(name), cpu(R, name)
    if not data or not c or not data.get("requests"):
        return None
    return c[part] * c["wall"] / data["requests"] * 1e6


def bcrypt(cost, threads):
    """The bcrypt baseline with at most `threads` threads (identity hashes on a pool of one
    thread per core, so more connections than cores cannot hash faster)."""
    t = min(threads, NPROC)
    return js(f"bcrypt_{cost}_t{t}"), t


# --- 1. and 2. per bcrypt cost ---------------------------------------------------------------

# Token issuance does not depend on the bcrypt cost (client secrets are SHA-256): first stack only.
for c in CONNS:
    t, h = js(f"token_{COSTS[0]}_c{c}"), js(f"idhealth_{COSTS[0]}_c{c}")
    row(f"1. token issuance, client_credentials (HTTP Basic), {c} conn",
        rate_of(t), "tokens/s", rate_of(h), "req/s", f"identity GET /health/live, {c} conn",
        note=f"p50 {ms(t['p50_ms'])}, p99 {ms(t['p99_ms'])}" if t else "", failed=t is None)
if num("pg_client_tps") is not None:
    t = js(f"token_{COSTS[0]}_c{MAXC}")
    row(f"   token issuance, {MAXC} conn, vs pgbench client-row lookup", rate_of(t), "tokens/s",
        num("pg_client_tps"), "tx/s", f"pgbench: one client row by primary key, {R.get('pg_client_clients', '?')} clients ¹",
        failed=t is None)

for cost in COSTS:
    for c in CONNS:
        lg = js(f"login_{cost}_c{c}")
        b, threads = bcrypt(cost, c)
        row(f"2. password login (POST /auth/login), bcrypt cost {cost}, {c} conn",
            rate_of(lg), "logins/s", b["rate"] if b else None, "hashes/s",
            f"bare bcrypt verify, cost {cost}, {threads} thread{'s' if threads > 1 else ''} ²",
            note=f"p50 {ms(lg['p50_ms'])}, p99 {ms(lg['p99_ms'])}; {lg['ok']:,} logins" if lg else "", failed=lg is None)
    lg1, b1 = js(f"login_{cost}_c{min(CONNS)}"), js(f"bcrypt_{cost}_t1")
    if lg1 and b1:
        row(f"   login latency p50, {min(CONNS)} conn, bcrypt cost {cost}", lg1["p50_ms"], "ms",
            b1["mean_ms"], "ms", f"one bare bcrypt verify at cost {cost} ²")
    if num("pg_login_tps") is not None:
        lg = js(f"login_{cost}_c{MAXC}")
        row(f"   password login, bcrypt cost {cost}, {MAXC} conn, vs pgbench login transaction", rate_of(lg), "logins/s",
            num("pg_login_tps"), "tx/s", f"pgbench: login-shaped transaction, {R.get('pg_login_clients', '?')} clients ³",
            failed=lg is None)

# --- 3. JWT verification through the ledger --------------------------------------------------

vc = R.get("verify_connections", "?")
ntok = int(num("verify_tokens") or 0)
cache = int(num("verifier_cache") or 10000)
same, many, none, health = js("verify_same"), js("verify_many"), js("verify_none"), js("ledger_health")
if "verify_none_json" in R or "verify_same_json" in R or "fetch_json" in R:
    row(f"3a. JWT verify (ledger POST /entries → 400), one token, cached, {vc} conn", rate_of(same), "req/s",
        rate_of(none), "req/s", "ledger POST /entries without token (401, no verification) ⁴",
        note=f"p50 {ms(same['p50_ms'])}" if same else "", failed=same is None)
    partly = " — fewer tokens than the cache holds: mostly cached!" if ntok <= cache else ""
    row(f"3b. JWT verify (ledger POST /entries → 400), {ntok:,} tokens rotated, uncached, {vc} conn{partly}",
        rate_of(many), "req/s", rate_of(none), "req/s", "ledger POST /entries without token (401, no verification) ⁴",
        note=f"p50 {ms(many['p50_ms'])}" if many else "", failed=many is None)
    row(f"3c. baseline: ledger POST /entries without token (401), {vc} conn", rate_of(none), "req/s",
        rate_of(health), "req/s", "ledger GET /health/live", failed=none is None)
    row(f"   ledger GET /health/live, {vc} conn", rate_of(health), "req/s", failed=health is None)
    cpu_none = cpu_per_request_us("verify_none", "ledger")
    cpu_same = cpu_per_request_us("verify_same", "ledger")
    cpu_many = cpu_per_request_us("verify_many", "ledger")
    row("   ledger CPU per request, 3b (uncached verify)", cpu_many, "µs CPU", cpu_none, "µs CPU",
        "the same without token (3c) ⁵", failed=cpu_many is None)
    row("   ledger CPU per request, 3a (cached verify)", cpu_same, "µs CPU", cpu_none, "µs CPU",
        "the same without token (3c) ⁵", failed=cpu_same is None)
    if cpu_many is not None and cpu_none is not None and cpu_same is not None:
        row("   ledger CPU of one uncached verification (3b − 3c)", cpu_many - cpu_none, "µs CPU",
            cpu_same - cpu_none, "µs CPU", "a cached one (3a − 3c) ⁵")


# --- output ----------------------------------------------------------------------------------

def cells(r):
    ratio = "–" if r["ratio"] is None else f"{r['ratio']:.3g}"
    value = FAILED if r["failed"] else fmt(r["value"])
    if r["note"] and not r["failed"]:
        value += f" ({r['note']})"
    baseline = "–" if r["baseline"] is None else f"{fmt(r['baseline'])} {r['baseline_unit']}: {r['baseline_what']}"
    return [r["metric"], value, r["unit"], baseline, ratio]


out = []
p = out.append
p("")
p(f"MedLedger identity benchmark, {R.get('date', '?')}")
p(f"machine: {R.get('machine', '?')}; PostgreSQL {R.get('postgres', '?')}; release build, revision {R.get('revision', '?')}")
p(f"services, database and load clients share this machine; before the run {R.get('busy_before', '?')} cores "
  "were busy with other work")
costs_seen = ", ".join(f"BCRYPT_COST={c}: stored hashes (cost:count) {R.get(f'hash_costs_{c}', '?')}" for c in COSTS)
p(f"bcrypt in identity's database: {costs_seen}; LOGIN_ADDRESS_LIMIT={R.get('login_address_limit', '?')}")
p("")
header = ["metric", "value", "unit", "baseline", "ratio"]
for text in table(header, [cells(r) for r in rows]):
    p(text)
p("")
p("Ratios are value ÷ baseline, both measured in this run. Failed rows: see the raw outputs beside results.env.")
p(f"¹ pgbench in a scratch database of the same cluster, {R.get('pg_client_clients', '?')} clients: one SELECT of a "
  f"client row by primary key (avg {R.get('pg_client_latency_ms', '?')} ms), all the database work of a "
  "client_credentials request (identity then compares the secret's SHA-256 and signs an EdDSA token; it writes "
  "nothing, and the bcrypt cost does not matter to it).")
bv = R.get("bcrypt_version", "?")
b_lines = []
for cost in COSTS:
    for t in sorted({1, NPROC}):
        b = js(f"bcrypt_{cost}_t{t}")
        if b:
            b_lines.append(f"cost {cost}, {t} thread{'s' if t > 1 else ''}: {fmt(b['rate'])}/s, "
                           f"{ms(b['mean_ms'])} each, {b['cores']} cores busy")
p(f"² Bare bcrypt verification (pyca bcrypt {bv}, bcrypt.checkpw of a 24-character password: one full bcrypt "
  "computation, as identity does per login), measured in this run on this machine: "
  + ("; ".join(b_lines) if b_lines else "not measured") + ". "
  "Identity hashes on a pool of one thread per core, so the rows with more connections than cores are "
  "set against one thread per core; a ratio near 1 means logins run at the hashing limit. In the latency "
  "rows a ratio near 1 means a login costs about one hash; far below 1, identity is not hashing at that cost. The baseline "
  "is another implementation of the same algorithm (identity uses HummingbirdBcrypt's C code), so "
  "ratios slightly above 1 are possible.")
p(f"³ pgbench, {R.get('pg_login_clients', '?')} clients, on identity's tables: a login's database work as identity "
  f"does it (the account by username; then one transaction resetting its failure count and inserting a session, a "
  f"refresh token and a ~1 KB AuditEvent into the outbox; avg {R.get('pg_login_latency_ms', '?')} ms), no hashing: "
  "the rate logins could reach if bcrypt were free.")
f = js("fetch")
fetched = (f"{f['tokens']:,} tokens fetched in {f['seconds']:.1f} s ({fmt(f['rate'])}/s, {R.get('max_connections', '?')} "
           f"clients; token lifetime {f['ttl_seconds']} s)") if f else "token fetch failed"
threads = int(num("verify_threads") or 1)
slice_ = ntok // threads if ntok else 0
if slice_:
    need = (cache - slice_) / ((threads - 1) * slice_) if threads > 1 else 0
    miss = ("every lookup misses as long as neither wrk thread runs more than "
            f"{1 / need:.1f}× faster than the other" if 0 < need < 1 else
            "every lookup misses whatever the threads' speeds" if need <= 0 else
            "lookups can hit the cache")
else:
    miss = "?"
p(f"⁴ The ledger's bearer middleware verifies the token (EdDSA signature, issuer, audience, expiry; verified "
  f"tokens are cached until they expire, {cache:,} at most, the cache is cleared when full), then the handler "
  f"refuses the empty batch {{\"entries\":[]}} with 400 before any database work; without a token it answers 401 "
  f"before any verification. 3b: {fetched}; each wrk thread rotates through its own slice, so a token comes "
  f"back only after about {ntok:,} other requests: {miss}.")
p("⁵ CPU the ledger process used during the phase ÷ requests answered (from /proc), in µs; the differences "
  "estimate what one verification costs. The verifier is an actor, so uncached verifications run one at a time.")
p("")
p("CPU used per phase, in cores of this machine; `other` is the rest of the machine's busy time: other")
p("processes and kernel network processing (softirq), which no process is charged for:")
p("")
phase_names = [k[4:] for k in R if k.startswith("cpu_")]
cpu_json = [{"phase": name, **cpu(R, name)} for name in phase_names]
for text in cpu_table(R, [(name, name) for name in phase_names], ["identity", "ledger"]):
    p(text)
p("")
log_errors = ", ".join(f"{k[len('log_errors_'):]}: {v}" for k, v in R.items() if k.startswith("log_errors_"))
p(f"service log lines mentioning error/critical (service_cost): {log_errors or '?'}; "
  f"measurements took {R.get('bench_seconds', '?')} s")

# Warnings a reader must not miss: a cost that did not reach identity makes the login rows meaningless.
warnings = []
for cost in COSTS:
    seen = R.get(f"hash_costs_{cost}", "")
    if seen and seen != "none found" and not any(part.split(":")[0] == str(cost) for part in seen.split(",")):
        warnings.append(f"identity's stored hashes have costs {seen}, not {cost}: is BCRYPT_COST passed to identity?")
    lg1, b1 = js(f"login_{cost}_c{min(CONNS)}"), js(f"bcrypt_{cost}_t1")
    if lg1 and b1 and b1["mean_ms"] >= 20 and lg1["p50_ms"] < 0.5 * b1["mean_ms"]:
        warnings.append(f"logins at cost {cost} take {ms(lg1['p50_ms'])}, less than half of one bcrypt verify "
                        f"({ms(b1['mean_ms'])}): identity does not seem to hash at cost {cost}")
if ntok and ntok <= cache:
    warnings.append(f"3b used only {ntok:,} tokens, not more than the verifier's cache ({cache:,}): mostly cache hits")
for w in warnings:
    p(f"WARNING: {w}")

print("\n".join(out))

if ARGS.json_path:
    meta = {k: R.get(k) for k in ("date", "machine", "nproc", "postgres", "revision", "busy_before", "costs", "connections",
                                  "bcrypt_version", "login_address_limit", "jwt_cost", "verify_connections",
                                  "verify_tokens", "verifier_cache", "bench_seconds")}
    meta["hash_costs"] = {str(c): R.get(f"hash_costs_{c}") for c in COSTS}
    with open(ARGS.json_path, "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "rows": rows, "cpu": cpu_json, "warnings": warnings}, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    print(f"(also written: {ARGS.json_path})", file=sys.stderr)
