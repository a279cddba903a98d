"""What the benchmark reports (report.py, bench-*-report.py) share: reading results.env,
formatting numbers and printing a Markdown table and the CPU per phase; and what the set-up
scripts (bench-*-prep.py) share: HTTP to this machine's stack, logins and accounts."""

import json
import os
import secrets
import string
import urllib.error
import urllib.parse
import urllib.request


class Results(dict):
    """The KEY=value lines of a benchmark's results.env, as a dict with typed readers."""

    def __init__(self, path):
        super().__init__()
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    self[key] = value

    def num(self, key):
        try:
            return float(self[key])
        except (KeyError, ValueError):
            return None

    def js(self, name):
        """The JSON result of a phase, or None when it is missing or reported errors."""
        try:
            data = json.loads(self[f"{name}_json"])
        except (KeyError, ValueError):
            return None
        return data if self.get(f"{name}_ok") == "1" else None


def rate(x):
    return f"{x:,.0f}"


def ms(x):
    if x >= 100:
        return f"{x:,.0f} ms"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.2f} ms"


def ratio(x):
    return f"{x:.3g}"


def latencies(d):
    """The p50 and p99 of a phase's JSON result."""
    return f"p50 {ms(d['p50_ms'])}, p99 {ms(d['p99_ms'])}"


def percentiles(values):
    """{"n", "p50_ms", "p99_ms", "max_ms"} of latencies in ms (nearest rank; rounded to µs)."""
    s = sorted(values)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"n": len(s), "p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3), "max_ms": round(s[-1], 3)}


def verdict(ok):
    return "met" if ok else "**missed**"


def table(header, rows):
    """A Markdown table with padded columns, as a list of lines."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]


def heading(R, what):
    """The first lines of a benchmark's table: what, when, on what machine, how busy it was."""
    mode = " (QUICK MODE: a smoke run, not a measurement)" if R.get("mode") == "quick" else ""
    load = f" (load average {R['load_before']})" if "load_before" in R else ""
    return ["", f"MedLedger {what} benchmark, {R.get('date', '?')}{mode}",
            f"machine: {R.get('machine', '?')}; PostgreSQL {R.get('postgres', '?')}; {R.get('build', 'release build')}, "
            f"revision {R.get('revision', '?')}",
            f"services, database and load clients share this machine; before the run {R.get('busy_before', '?')} cores "
            f"were busy with other work{load}"]


def cpu(R, name):
    """The cpu_NAME line benchlib.sh's phase_end wrote, as {part: cores} (with wall in s), or None."""
    if f"cpu_{name}" not in R:
        return None
    return {k: float(v) for k, v in (part.split(":", 1) for part in R[f"cpu_{name}"].split(","))}


def cpu_table(R, phases, services):
    """The CPU each part used per phase (label, cores), as lines: `other` is the machine's busy
    time that none of services, PostgreSQL or the load client account for."""
    rows = []
    for key, label in phases:
        c = cpu(R, key)
        if c is None:
            continue
        other = c["machine"] - sum(c[s] for s in services) - c["postgres"] - c["client"]
        rows.append([label, f"{c['wall']:.0f} s"] + [f"{c[s]:.2f}" for s in services + ["postgres", "client"]]
                    + [f"{max(other, 0):.2f}", f"{c['machine']:.2f}"])
    return table(["phase", "wall"] + services + ["postgres", "load client", "other", "machine total"], rows)


def memory(R):
    """{service: (rss KiB, peak KiB)} from the mem_NAME=rss,peak lines of benchlib.sh's put_memory."""
    out = {}
    for key, value in R.items():
        if key.startswith("mem_"):
            rss, _, peak = value.partition(",")
            if rss.isdigit() and peak.isdigit():
                out[key[4:]] = (int(rss), int(peak))
    return out


def mib(kib):
    return f"{kib / 1024:,.0f} MiB"


# HTTP for the set-up scripts (bench-*-prep.py): standard library only, a timeout on every
# request, no retries, and only this machine as a target.

TIMEOUT = 30
FHIR_JSON = "application/fhir+json"


class Failed(Exception):
    """A set-up step that cannot go on; the scripts print it and exit 1."""


def local_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise Failed(f"{url} is not an http://127.0.0.1 address (benchmarks only load this machine)")
    return url.rstrip("/")


def env(name):
    """A setting from the environment (the stack's stack.env, or the bench command)."""
    value = os.environ.get(name)
    if not value:
        raise Failed(f"${name} is not set")
    return value


def call(method, url, body=None, headers=None, timeout=TIMEOUT):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise Failed(f"{method} {url}: {e}") from None


def describe(method, url, status, body):
    return f"{method} {url} -> {status}: {body[:300].decode('utf-8', 'replace')}"


def login(identity, username, password):
    """identity's /auth/login answer (JSON) for an account."""
    url = identity + "/auth/login"
    body = json.dumps({"username": username, "password": password}).encode()
    status, _, answer = call("POST", url, body, {"Content-Type": "application/json"})
    if status != 200:
        raise Failed(f"login as {username} failed: " + describe("POST", url, status, answer))
    return json.loads(answer)


def login_token(identity, username, password):
    """An account's access token, refusing one that may only change its password."""
    data = login(identity, username, password)
    if data.get("scope", "").split() == ["medledger/password.change"]:
        raise Failed(f"{username} must change its password first")
    return data["access_token"]


def random_password():
    # 24 random letters and digits: 20+ characters, so the policy needs no character classes.
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def create_account(identity, admin, role, fhir_user=None):
    """A new account with a random name and password, created by the admin token `admin`."""
    username = f"bench.{role}.{secrets.token_hex(6)}"
    password = random_password()
    account = {"username": username, "password": password, "role": role, "name": f"Benchmark {role}"}
    if fhir_user:
        account["fhirUser"] = fhir_user
    url = identity + "/users"
    status, _, answer = call("POST", url, json.dumps(account).encode(),
                             {"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
    if status != 201:
        raise Failed(f"creating the {role} account failed: " + describe("POST", url, status, answer))
    return username, password


def searchset(url, token):
    """A FHIR search's Bundle (which must be a searchset) and its size in bytes."""
    status, _, answer = call("GET", url, None, bearer(token))
    if status != 200:
        raise Failed(describe("GET", url, status, answer))
    bundle = json.loads(answer)
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
        raise Failed(f"GET {url}: not a searchset Bundle")
    return bundle, len(answer)


def create(records, token, resource):
    """POST a FHIR resource; its id (from the answer's body, checked against Location)."""
    url = f"{records}/fhir/{resource['resourceType']}"
    status, headers, answer = call("POST", url, json.dumps(resource).encode(), bearer(token, FHIR_JSON))
    if status != 201:
        raise Failed(describe("POST", url, status, answer))
    rid = json.loads(answer).get("id")
    location = headers.get("Location", "")
    if not rid or f"/{resource['resourceType']}/{rid}/_history/" not in location:
        raise Failed(f"POST {url}: 201 without a matching id and Location ({location!r})")
    return rid


def report_body(subject, performer, status="preliminary", conclusion="benchmark set-up check"):
    """A valid ~1 KB DiagnosticReport of Patient/`subject` (a lab CBC panel)."""
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2",
                             "display": "CBC panel - Blood by Automated count"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": "2024-05-01T10:00:00Z",
        "issued": "2024-05-01T12:00:00.000Z",
        "performer": [{"reference": performer}],
        "conclusion": conclusion,
    }


def bearer(token, content_type=None, accept="application/fhir+json"):
    h = {"Authorization": "Bearer " + token, "Accept": accept}
    if content_type:
        h["Content-Type"] = content_type
    return h


def auth_token():
    """The token of $BENCH_AUTH ("Bearer …"), which the bench command keeps out of argv."""
    auth = env("BENCH_AUTH")
    if not auth.startswith("Bearer "):
        raise Failed("$BENCH_AUTH must be 'Bearer <token>'")
    return auth[len("Bearer "):]
