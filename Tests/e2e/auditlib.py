"""Client helpers for the audit service's black-box tests (issue 7).

Independent of the Swift service: requests for HTTP, fhirkit (through recordslib's response
hook) for every FHIR answer, hashlib's SHA3-256 and the `rfc8785` package to recompute the
hash chain from the stored rows, and psql for what only the database shows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import anchorlib as al
import recordslib as rl
import requests
import rfc8785

ZERO_HASH = bytes(32)
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
USER_SYSTEM = "urn:medledger:identity:user"
# Outbox delivery is prompt (woken on commit); a service that was down retries within seconds.
DELIVERY_WAIT = 30.0


class Audit:
    """HTTP client for the audit service: FHIR AuditEvent at /fhir, JSON elsewhere."""

    def __init__(self, stack: dict[str, str], instance: str | None = None):
        """instance: send every request to this one instance of a scaled-out audit (its paging
        links still name the deployment's AUDIT_URL)."""
        self.public = stack["AUDIT_URL"].rstrip("/")
        self.base = self.public + "/fhir"
        self.target = (instance or self.public).rstrip("/")
        self.http = requests.Session()
        self.http.hooks["response"].append(rl.check_fhir_response)

    def url(self, url: str) -> str:
        """`url` (under AUDIT_URL) at the instance this client talks to."""
        return self.target + url[len(self.public) :] if url.startswith(self.public) else url

    def search(self, params: Any, token: str | None) -> requests.Response:
        h = {"Accept": rl.FHIR_JSON}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.http.get(self.url(self.base + "/AuditEvent"), params=params, headers=h, timeout=rl.HTTP_TIMEOUT)

    def read(self, event_id: str, token: str | None) -> requests.Response:
        h = {"Accept": rl.FHIR_JSON}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.http.get(self.url(f"{self.base}/AuditEvent/{event_id}"), headers=h, timeout=rl.HTTP_TIMEOUT)

    def events(self, params: dict, token: str, max_pages: int = 20) -> list[dict]:
        """Every match of a search, following `next` links (bounded)."""
        bundle = rl.assert_bundle(self.search({**params, "_count": "100"}, token), what=f"AuditEvent?{params}")
        found = [e["resource"] for e in rl.entries(bundle)]
        for _ in range(max_pages):
            nxt = rl.link(bundle, "next")
            if not nxt:
                return found
            h = {"Accept": rl.FHIR_JSON, "Authorization": f"Bearer {token}"}
            bundle = rl.assert_bundle(self.http.get(self.url(nxt), headers=h, timeout=rl.HTTP_TIMEOUT), what="next page")
            found += [e["resource"] for e in rl.entries(bundle)]
        raise AssertionError(f"more than {max_pages} pages of AuditEvent?{params}")

    def verify(self, token: str | None, **params: Any) -> requests.Response:
        h = {"Accept": "application/json"}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.http.get(self.target + "/chain/verify", params=params, headers=h, timeout=300)

    def wait_for(self, params: dict, token: str, count: int = 1, timeout: float = DELIVERY_WAIT) -> list[dict]:
        """The matches of `params` once at least `count` have arrived (they are delivered
        asynchronously from the services' outboxes)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(params, token)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


def codes(event: dict, element: str) -> set[str]:
    value = event.get(element)
    codings = value if isinstance(value, list) else [value] if value else []
    return {c.get("code") for c in codings if isinstance(c, dict)}


def patients(event: dict) -> set[str]:
    """The Patient references an event names (as agent or entity)."""
    refs = [a.get("who", {}).get("reference") for a in event.get("agent", [])]
    refs += [e.get("what", {}).get("reference") for e in event.get("entity", [])]
    return {r for r in refs if isinstance(r, str) and r.startswith("Patient/") and "/_history/" not in r}


def is_break_glass(event: dict) -> bool:
    return any(c.get("code") == "BTG" for p in event.get("purposeOfEvent", []) for c in p.get("coding", []))


# --------------------------------------------------------------------------- the chain itself


def chain_rows(stack: dict[str, str], first: int = 1, last: int | None = None) -> list[tuple[int, str, bytes]]:
    """(seq, stored event text, stored hash) from the audit database, in order."""
    upper = f"AND seq <= {int(last)}" if last is not None else ""
    out = al.sql(stack["AUDIT_DATABASE_URL"],
                 f"SELECT seq || ' ' || encode(hash, 'hex') || ' ' || {_b64('event')} "
                 f"FROM audit_events WHERE seq >= {int(first)} {upper} ORDER BY seq")  # fmt: skip
    rows = []
    for line in out.splitlines():
        if line.strip():
            seq, digest, text = line.split(" ", 2)
            rows.append((int(seq), base64.b64decode(text).decode(), bytes.fromhex(digest)))
    return rows


def stored_hash(stack: dict[str, str], seq: int) -> bytes:
    if seq == 0:
        return ZERO_HASH
    return bytes.fromhex(al.sql(stack["AUDIT_DATABASE_URL"], f"SELECT encode(hash, 'hex') FROM audit_events WHERE seq = {int(seq)}"))


def link(previous: bytes, text: str) -> bytes:
    return hashlib.sha3_256(previous + text.encode()).digest()


def recompute(rows: list[tuple[int, str, bytes]], previous: bytes) -> list[str]:
    """What an independent checker finds wrong in consecutive rows: each text must be its own
    RFC 8785 form (the `rfc8785` package) and each hash SHA3-256(previous ‖ text)."""
    problems = []
    for seq, text, digest in rows:
        canonical = rfc8785.dumps(json.loads(text)).decode()
        if canonical != text:
            problems.append(f"{seq}: not in RFC 8785 form")
        if link(previous, text) != digest:
            problems.append(f"{seq}: hash does not chain")
        previous = digest
    return problems


# --------------------------------------------------------------------------- stored events (SQL)


def _like(needle: str) -> str:
    return "'%" + needle.replace("'", "''").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%'"


def _b64(column: str) -> str:
    """A column as one line of base64 (PostgreSQL wraps base64 at 76 characters)."""
    return f"translate(encode(convert_to({column}, 'UTF8'), 'base64'), E'\\n', '')"


def stored_events(stack: dict[str, str], *needles: str, after: int = 0) -> list[dict]:
    """The events stored in the chain after `after` whose text contains every needle."""
    where = " ".join(f"AND event LIKE {_like(n)}" for n in needles)
    out = al.sql(stack["AUDIT_DATABASE_URL"], f"SELECT {_b64('event')} FROM audit_events WHERE seq > {int(after)} {where} ORDER BY seq")
    return [json.loads(base64.b64decode(line)) for line in out.splitlines() if line.strip()]


def last_seq(stack: dict[str, str]) -> int:
    return int(al.sql(stack["AUDIT_DATABASE_URL"], "SELECT coalesce(max(seq), 0) FROM audit_events"))


def wait_stored(stack: dict[str, str], *needles: str, count: int = 1, after: int = 0, timeout: float = DELIVERY_WAIT) -> list[dict]:
    """The stored events with these needles once at least `count` were delivered."""
    deadline = time.monotonic() + timeout
    while True:
        found = stored_events(stack, *needles, after=after)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)
