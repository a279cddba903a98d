"""What the benchmark reports (report.py, bench-identity-report.py, bench-records-report.py) share:
reading results.env, formatting numbers and printing a Markdown table."""

import json
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


def verdict(ok):
    return "met" if ok else "**missed**"


def table(header, rows):
    """A Markdown table with padded columns, as a list of lines."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]


# HTTP for the set-up scripts (bench-identity-prep.py, bench-records-prep.py): standard library
# only, a timeout on every request, no retries, and only this machine as a target.

TIMEOUT = 30


class Failed(Exception):
    """A set-up step that cannot go on; the scripts print it and exit 1."""


def local_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise Failed(f"{url} is not an http://127.0.0.1 address (benchmarks only load this machine)")
    return url.rstrip("/")


def call(method, url, body=None, headers=None):
    """(status, headers, body bytes); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
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
