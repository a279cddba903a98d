"""Client helpers for the black-box tests of records' FHIR Subscriptions (issue 9).

Independent of the Swift service: a real HTTP receiver (the standard library's threaded
`http.server`) that records every notification as it arrived, requests for the Subscription
interactions (through recordslib.Records, so every FHIR answer passes fhirkit), two JOSE
implementations (joserfc and PyJWT) for the detached JWS of RFC 7515 appendix F in
`X-MedLedger-Signature`, and `websocket-client` for the R4 websocket channel.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import recordslib as rl
import requests
import websocket
from e2e_support import safe_free_port
from identitylib import b64url, unb64url
from joserfc import jws as jose_jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
CONTENTS = ("empty", "id-only", "full-resource")
SIGNATURE = "X-MedLedger-Signature"
SUBSCRIPTION = "X-MedLedger-Subscription"
EVENT_NUMBER = "X-MedLedger-Event-Number"
# Deliveries are woken by the write's commit; the test stack retries within 2 s at most.
DELIVERY_WAIT = 30.0
# Long enough for records to have delivered something it should not (several retry rounds).
QUIET_WAIT = 4.0


# --------------------------------------------------------------------------- the receiver


@dataclass(frozen=True)
class Hit:
    """One POST that reached the receiver, as it arrived."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() on arrival
    answered: int

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def ok(self) -> bool:
        return 200 <= self.answered < 300

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class Receiver:
    """A rest-hook endpoint on 127.0.0.1 that records every POST (headers, exact body bytes,
    arrival time) and answers `answer` (200 unless a test says otherwise, e.g. 503) after
    `delay` seconds (0: at once; a slow receiver keeps deliveries in flight). It can be
    stopped (connections refused) and started again on the same port; every connection is
    closed after its request, so a stopped receiver receives nothing more."""

    def __init__(self, port: int | None = None):
        # Outside the ephemeral range: nobody else takes the port while the receiver is stopped.
        self.port = port or safe_free_port()
        self.answer = 200
        self.delay = 0.0
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        assert self._server is None, "the receiver is already running"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = _read_body(self)
                time.sleep(receiver.delay)
                code = receiver.answer
                hit = Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time(), code)
                with receiver._lock:
                    receiver._hits.append(hit)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def hits(self, sub_id: str | None = None) -> list[Hit]:
        """Every POST so far (of one subscription: by its X-MedLedger-Subscription header)."""
        with self._lock:
            return [h for h in self._hits if sub_id is None or h.header(SUBSCRIPTION) == sub_id]

    def wait(self, check: Callable[[], bool], what: str, timeout: float = DELIVERY_WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"{what}: not so after {timeout:.0f} s"
            time.sleep(0.1)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- notifications


def parameters(resource: dict) -> dict[str, list[dict]]:
    """A Parameters resource's parameters by name (each a list: names may repeat)."""
    out: dict[str, list[dict]] = {}
    for p in resource.get("parameter") or []:
        out.setdefault(p.get("name"), []).append(p)
    return out


def parts(param: dict) -> dict[str, dict]:
    return {p["name"]: p for p in param.get("part") or []}


def value(param: dict | None) -> Any:
    """The value[x] of a parameter or part (None when absent)."""
    if param is None:
        return None
    for k, v in param.items():
        if k.startswith("value"):
            return v["reference"] if k == "valueReference" else v
    return None


@dataclass(frozen=True)
class Note:
    """A notification that was answered 2xx, read: its status Parameters and event."""

    hit: Hit
    bundle: dict
    status: dict[str, list[dict]]
    event: dict[str, dict]  # the notification-event's parts ({} for a heartbeat, if any)

    @property
    def number(self) -> int:
        return int(value(self.event["event-number"]))

    @property
    def focus(self) -> str | None:
        return value(self.event.get("focus"))

    @property
    def timestamp(self) -> str | None:
        return value(self.event.get("timestamp"))


def note(hit: Hit) -> Note:
    bundle = hit.json
    status = parameters(bundle["entry"][0]["resource"])
    events = status.get("notification-event") or []
    assert len(events) == 1, f"a notification with {len(events)} notification-events: {hit.body[:600]!r}"
    return Note(hit, bundle, status, parts(events[0]))


def delivered(receiver: Receiver, sub_id: str) -> dict[int, Note]:
    """The notifications of one subscription that the receiver answered 2xx, by event number:
    at-least-once delivery may repeat one, and a repeat must be the same event."""
    out: dict[int, Note] = {}
    for hit in receiver.hits(sub_id):
        if not hit.ok:
            continue
        n = note(hit)
        assert hit.header(EVENT_NUMBER) == str(n.number), f"header {hit.header(EVENT_NUMBER)} vs body event-number {n.number}"
        if n.number in out:
            first = out[n.number]
            assert (first.focus, first.timestamp) == (n.focus, n.timestamp), (
                f"event {n.number} of Subscription/{sub_id} delivered twice with different content: {first.focus} {n.focus}"
            )
        else:
            out[n.number] = n
    return out


def wait_for_events(receiver: Receiver, sub_id: str, count: int, timeout: float = DELIVERY_WAIT) -> list[Note]:
    """The first `count` distinct events of a subscription, in event-number order, once they
    have all arrived (polling; fails after `timeout`)."""
    receiver.wait(lambda: len(delivered(receiver, sub_id)) >= count,
                  f"{count} events of Subscription/{sub_id} delivered (have {len(delivered(receiver, sub_id))})", timeout)  # fmt: skip
    got = delivered(receiver, sub_id)
    return [got[k] for k in sorted(got)]


def focus_url(records: rl.Records, rid: str, version: int | str) -> str:
    return f"{records.base}/DiagnosticReport/{rid}/_history/{version}"


def check_note(n: Note, records: rl.Records, sub_id: str, content: str, reader_token: str, events_since: int | None = None) -> None:
    """One delivered notification against the contract: headers, the backport R4 Bundle shape
    (checked by fhirkit), the payload content and, for full-resource, the resource exactly as
    vread serves it to the subscriber. Signatures are checked separately (verify_signature)."""
    hit = n.hit
    what = f"event {n.number} of Subscription/{sub_id}"
    assert (hit.header("Content-Type") or "").split(";")[0].strip() == rl.FHIR_JSON, f"{what}: {hit.headers}"
    assert hit.header(SUBSCRIPTION) == sub_id, f"{what}: {hit.headers}"
    rl.validate(hit.body, what)
    b = n.bundle
    assert b["resourceType"] == "Bundle" and b["type"] == "history", f"{what}: {b.get('type')}"
    assert rl.UUID_RE.match(b.get("id", "")), f"{what}: Bundle.id {b.get('id')!r}"
    rl.instant(b.get("timestamp"))
    first = b["entry"][0]
    assert first["fullUrl"].startswith("urn:uuid:"), f"{what}: {first['fullUrl']}"
    status = first["resource"]
    assert status["resourceType"] == "Parameters" and STATUS_PROFILE in status["meta"]["profile"], f"{what}: {status}"
    assert first["request"] == {"method": "GET", "url": f"{records.base}/Subscription/{sub_id}/$status"}, f"{what}: {first['request']}"
    assert first["response"]["status"] == "200", f"{what}: {first['response']}"
    p = n.status
    assert value(p["subscription"][0]) == f"{records.base}/Subscription/{sub_id}", f"{what}: {p['subscription']}"
    assert value(p["type"][0]) == "event-notification", f"{what}: {p['type']}"
    assert value(p["status"][0]) == "active", f"{what}: {p['status']}"
    since = int(value(p["events-since-subscription-start"][0]))
    assert since >= n.number, f"{what}: events-since-subscription-start {since}"
    if events_since is not None:
        assert since == events_since, f"{what}: events-since-subscription-start {since} != {events_since}"
    assert n.timestamp and rl.INSTANT_MS_RE.match(n.timestamp), f"{what}: timestamp {n.timestamp!r}"
    if content == "empty":
        assert n.focus is None and len(b["entry"]) == 1, f"{what}: an empty notification names its focus: {b}"
        return
    assert n.focus and n.focus.startswith(f"{records.base}/DiagnosticReport/"), f"{what}: focus {n.focus!r}"
    assert len(b["entry"]) == 2, f"{what}: {len(b['entry'])} entries"
    rid, _, vid = n.focus.removeprefix(f"{records.base}/DiagnosticReport/").partition("/_history/")
    entry = b["entry"][1]
    assert entry["fullUrl"] == n.focus, f"{what}: {entry['fullUrl']} vs focus {n.focus}"
    first_version = vid == "1"
    # As in records' history Bundles: a create is POST to the type, an update PUT to the resource.
    want = {"method": "POST", "url": "DiagnosticReport"} if first_version else {"method": "PUT", "url": f"DiagnosticReport/{rid}"}
    assert entry["request"] == want, f"{what}: {entry['request']}"
    assert entry["response"]["status"] == ("201" if first_version else "200"), f"{what}: {entry['response']}"
    r = records.vread("DiagnosticReport", rid, vid, reader_token)
    served = rl.assert_resource(r, 200, "DiagnosticReport", version=int(vid), what=f"{what}: vread of its focus")
    assert n.timestamp == served["meta"]["lastUpdated"], f"{what}: timestamp {n.timestamp} vs the version's {served['meta']['lastUpdated']}"
    if content == "id-only":
        assert "resource" not in entry, f"{what}: an id-only notification carries the resource"
    else:
        assert entry.get("resource") == served, f"{what}: the resource is not what vread serves:\n{entry.get('resource')}\n{served}"


def focus_of(n: Note, records: rl.Records) -> tuple[str, int]:
    rid, _, vid = n.focus.removeprefix(f"{records.base}/DiagnosticReport/").partition("/_history/")
    return rid, int(vid)


# --------------------------------------------------------------------------- signatures


def records_jwks(records: rl.Records) -> dict:
    r = records.http.get(records.public + "/.well-known/jwks.json", timeout=rl.HTTP_TIMEOUT)
    assert r.status_code == 200, rl.describe(r)
    return r.json()


def _parts(signature: str | None) -> tuple[str, str]:
    assert signature, f"no {SIGNATURE} header"
    head, payload, sig = signature.split(".")
    assert payload == "", f"{SIGNATURE} is not a detached JWS (its payload part is not empty): {signature[:80]}"
    return head, sig


def _key(jwks: dict, head: str) -> dict:
    header = json.loads(unb64url(head))
    assert header.get("alg") == "EdDSA" and "b64" not in header and "crit" not in header, f"JWS header {header}"
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    assert len(keys) == 1, f"kid {header.get('kid')!r} is not in records' JWKS {[k.get('kid') for k in jwks['keys']]}"
    return keys[0]


def verify_joserfc(signature: str | None, body: bytes, jwks: dict) -> bool:
    """RFC 7515 appendix F with joserfc: the payload put back between the dots, then verified."""
    head, sig = _parts(signature)
    key = OKPKey.import_key(_key(jwks, head))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA is deprecated via RFC 9864": still the contract
            obj = jose_jws.deserialize_compact(f"{head}.{b64url(body)}.{sig}", key, algorithms=["EdDSA"])
    except JoseError:
        return False
    return obj.payload == body


def verify_pyjwt(signature: str | None, body: bytes, jwks: dict) -> bool:
    """The same with PyJWT. (PyJWT's `detached_payload` is for RFC 7797 b64=false only, which
    this signature does not use, so the payload is put back as appendix F says.)"""
    head, sig = _parts(signature)
    key = jwt.PyJWK(_key(jwks, head)).key
    try:
        out = jwt.api_jws.PyJWS().decode_complete(f"{head}.{b64url(body)}.{sig}", key, algorithms=["EdDSA"])
    except jwt.InvalidTokenError:
        return False
    return out["payload"] == body


def verify_signature(hit: Hit, jwks: dict) -> None:
    """Both libraries accept the notification's signature over its exact body."""
    sig = hit.header(SIGNATURE)
    assert verify_joserfc(sig, hit.body, jwks), f"joserfc rejects the signature of {hit.body[:200]!r}"
    assert verify_pyjwt(sig, hit.body, jwks), f"PyJWT rejects the signature of {hit.body[:200]!r}"


# --------------------------------------------------------------------------- the Subscription resource


def subscription_body(criteria: str, endpoint: str | None = None, *, content: str | None = "full-resource",
                      channel: str = "rest-hook", headers: list[str] | None = None, status: str = "requested",
                      reason: str = "e2e: new final reports", payload: str = rl.FHIR_JSON, **extra) -> dict:  # fmt: skip
    """An R4 Subscription; content None sends no payload (the server's default, empty)."""
    ch: dict[str, Any] = {"type": channel}
    if endpoint is not None:
        ch["endpoint"] = endpoint
    if content is not None:
        ch["payload"] = payload
        ch["_payload"] = {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]}
    if headers is not None:
        ch["header"] = headers
    body = {"resourceType": "Subscription", "status": status, "reason": reason, "criteria": criteria, "channel": ch}
    body.update(extra)
    return body


class Subscriptions:
    """The Subscription interactions at records' FHIR base (answers checked by fhirkit)."""

    def __init__(self, records: rl.Records):
        self.records = records
        self.created: list[tuple[str, str]] = []  # (id, owner's token) of every one made here

    def create(self, body: Any, token: str | None) -> requests.Response:
        r = self.records.create("Subscription", body, token)
        if r.status_code == 201:
            self.created.append((r.json()["id"], token))
        return r

    def delete_created(self) -> None:
        """Deletes what this client made: a subscription whose receiver is gone would otherwise
        keep records retrying it for the rest of the run."""
        for sid, token in self.created:
            r = self.delete(sid, token)
            assert r.status_code in (200, 204, 404, 410), rl.describe(r)
        self.created.clear()

    def must_create(self, body: dict, token: str, what: str = "creating a Subscription") -> dict:
        r = self.create(body, token)
        sub = rl.assert_resource(r, 201, "Subscription", version=1, what=what)
        assert r.headers.get("Location") == f"{self.records.base}/Subscription/{sub['id']}/_history/1", r.headers.get("Location")
        assert sub["status"] == "active", f"{what}: stored status {sub['status']!r}"
        return sub

    def read(self, sid: str, token: str | None) -> requests.Response:
        return self.records.read("Subscription", sid, token)

    def update(self, body: dict, token: str | None, **kw) -> requests.Response:
        return self.records.update("Subscription", body["id"], body, token, **kw)

    def set_status(self, sid: str, status: str, token: str) -> dict:
        current = rl.assert_resource(self.read(sid, token), 200, "Subscription", what=f"reading Subscription/{sid}")
        body = {**rl.without_meta(current, "error"), "id": sid, "status": status}
        return rl.assert_resource(self.update(body, token), 200, "Subscription", what=f"Subscription/{sid} -> {status}")

    def delete(self, sid: str, token: str | None) -> requests.Response:
        return self.records.delete("Subscription", sid, token)

    def search(self, params: Any, token: str | None) -> requests.Response:
        return self.records.search("Subscription", params, token)

    def status(self, sid: str, token: str | None) -> requests.Response:
        return self.records.get(f"/Subscription/{sid}/$status", token)

    def must_status(self, sid: str, token: str) -> dict[str, list[dict]]:
        r = self.status(sid, token)
        assert r.status_code == 200, rl.describe(r)
        rl.assert_fhir_json(r)
        body = r.json()
        assert body["resourceType"] == "Parameters", rl.describe(r)
        return parameters(body)

    def wait_status(self, sid: str, token: str, check: Callable[[dict[str, list[dict]]], bool], what: str,
                    timeout: float = DELIVERY_WAIT) -> dict[str, list[dict]]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            p = self.must_status(sid, token)
            if check(p):
                return p
            assert time.monotonic() < deadline, f"{what}: not so after {timeout:.0f} s; $status: {json.dumps(p)[:1500]}"
            time.sleep(0.2)


def status_events(p: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """$status's notification-events (newest first) as {part name: value}."""
    return [{k: value(v) for k, v in parts(e).items()} for e in p.get("notification-event") or []]


def status_code(p: dict[str, list[dict]]) -> str:
    return value(p["status"][0])


# --------------------------------------------------------------------------- websocket


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/") + "/fhir/websocket"


def ws_connect(base: str, token: str | None, timeout: float = 10) -> websocket.WebSocket:
    """An R4 websocket to a records instance, the bearer token on the upgrade."""
    header = [f"Authorization: Bearer {token}"] if token else []
    return websocket.create_connection(ws_url(base), header=header, timeout=timeout)


def ws_expect(ws: websocket.WebSocket, want: Callable[[str], bool], what: str, timeout: float = DELIVERY_WAIT) -> list[str]:
    """Messages received until one satisfies `want` (all of them, in order)."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"{what}: not received after {timeout:.0f} s (got {got})"
        ws.settimeout(min(left, 1.0))
        try:
            msg = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        got.append(msg if isinstance(msg, str) else msg.decode())
        if want(got[-1]):
            return got


def ws_quiet(ws: websocket.WebSocket, seconds: float) -> list[str]:
    """Whatever arrives within `seconds` (to show nothing does)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ws.settimeout(left)
        try:
            msg = ws.recv()
        except websocket.WebSocketTimeoutException:
            break
        got.append(msg if isinstance(msg, str) else msg.decode())
    return got
