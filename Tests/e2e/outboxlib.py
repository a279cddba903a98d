"""A service's audit events wherever they are on their way to the audit service: still in the
service's audit_outbox, or delivered (deleted there) and stored in audit's audit_events. Read in
that order, an event the service has written cannot slip between the two reads.
"""

from __future__ import annotations

import json

import anchorlib as al


def audited(stack: dict[str, str], service: str, where: str) -> list[dict]:
    """The AuditEvents `service` (identity, records, consent) wrote whose text matches `where`
    (an SQL condition on the column `event`), each once."""
    found: dict[str, dict] = {}
    for url, table in ((stack[f"{service.upper()}_DATABASE_URL"], "audit_outbox"), (stack["AUDIT_DATABASE_URL"], "audit_events")):
        out = al.sql(url, f"SELECT idempotency_key || ' ' || event FROM {table} WHERE idempotency_key LIKE '{service}-%' AND ({where})")
        for line in out.splitlines():
            key, _, event = line.partition(" ")
            found.setdefault(key, json.loads(event))
    return list(found.values())
