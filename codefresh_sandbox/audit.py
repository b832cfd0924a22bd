"""Audit family: the account's audit log (the limited key gets 403).

    GET /audit      page/pageSize   {"data": [...]}
        page from 1 (or 0, see below; without `page`: the first page); pageSize defaults to 25, capped at 100;
        from/to bound `createdAt` (both inclusive). Newest first. `id` is a number.

Readings the evidence leaves open (SandboxConfig, README "Readings"):
- `audit_time_format`: `ms` (default) reads from/to as epoch milliseconds, `iso` as ISO-8601 date-times. A value in
  the other form is ignored, as a Node handler that only applies a bound that parses would do (Airbyte's test read
  sent ISO bounds and got records, so a wrong form is not an error there).
- `audit_cap`: one query lists at most this many entries (the docs' 50,000); the entries after it are silently not
  listed, the way a capped query would drop them.
- `audit_first_page`: `1` (default) or `0`, the number of the first page (no source shows it: Airbyte's tested read
  sent no `page` on its first request). A request without `page` gets the first page in both. A page below the first
  is a 400, as a validated query parameter would be (with `1`, page=0; a server that treats 0 as 1, or answers it
  with an empty page or a 500 from a negative skip, is covered by the connector's unit tests: the connector never
  sends page 0). A page past the end is an empty `data` in both, as a skip beyond the count finds nothing.
"""

from __future__ import annotations

import bisect
from typing import Any, Dict, List, Optional

from .common import (
    DAY_MS,
    Collection,
    Gen,
    Request,
    Response,
    capped_limit,
    dumps,
    iso,
    parse_iso_ms,
    raw_json,
    route,
)

FIRST_PAGES = ("1", "0")  # the `audit_first_page` reading: the number of the first page

# (entity, action, method, url template, status)
ACTIONS = [
    ("pipeline", "update", "PUT", "/api/pipelines/{name}", 200),
    ("pipeline", "create", "POST", "/api/pipelines", 201),
    ("pipeline", "run", "POST", "/api/pipelines/run/{name}", 200),
    ("pipeline", "delete", "DELETE", "/api/pipelines/{name}", 200),
    ("build", "terminate", "DELETE", "/api/progress/{id}", 200),
    ("build", "approve", "POST", "/api/workflow/{id}/pending-approval/approve", 200),
    ("project", "create", "POST", "/api/projects", 201),
    ("context", "update", "PUT", "/api/contexts/{name}", 200),
    ("user", "login", "POST", "/api/auth/login", 200),
    ("user", "invite", "POST", "/api/accounts/{id}/adduser/{name}", 200),
    ("apiKey", "create", "POST", "/api/auth/key", 201),
    ("trigger", "create", "POST", "/api/hermes/triggers/{name}", 201),
    ("pipeline", "update", "PUT", "/api/pipelines/{name}", 403),
]


def make_entry(g: Gen, i: int, created: int, data: Any) -> Dict[str, Any]:
    entity, action, method, url, status = ACTIONS[int(g.rng.random() ** 1.3 * len(ACTIONS))]
    user = g.pick(data.users.records)
    pipelines = data.pipeline_infos
    p = g.pick(pipelines) if pipelines else None
    entity_id = p.id if entity == "pipeline" and p else g.oid(created)
    entity_name = (
        p.name
        if entity == "pipeline" and p
        else {
            "build": f"build {entity_id[:8]}",
            "project": "platform-009",
            "context": "shared-config",
            "user": user["userName"],
            "apiKey": "ci-readonly",
            "trigger": "registry push",
        }.get(entity, entity)
    )
    name = entity_name.replace("/", "%2F")
    req_url = url.replace("{name}", name).replace("{id}", entity_id)
    req_body = (
        None
        if method == "DELETE"
        else {"name": entity_name, "sandbox": True}
        if action != "login"
        else {"provider": "github"}
    )
    return {
        "id": 1_000_001 + i,
        "createdAt": iso(created),
        "accountId": data.account_id,
        "userId": user["_id"],
        "userName": user["userName"],
        "userEmail": user["email"],
        "action": action,
        "entity": entity,
        "entityId": entity_id,
        "entityName": entity_name,
        "correlationId": f"{g.hex(8)}-{g.hex(4)}-{g.hex(4)}-{g.hex(4)}-{g.hex(12)}",
        "ip": f"10.{g.randint(0, 255)}.{g.randint(0, 255)}.{g.randint(1, 254)}",
        "req_url": req_url,
        "req_query": {} if g.chance(0.8) else {"force": "false"},
        "req_params": {"name": entity_name} if "{name}" in url else {"id": entity_id} if "{id}" in url else {},
        "req_body": req_body,
        "res_body": {"status": status, "message": "Forbidden"}
        if status == 403
        else ({"id": entity_id} if g.chance(0.7) else None),
        "rs_status": status,
    }


def generate(g: Gen, cfg: Any, data: Any) -> None:
    span = cfg.build_days * DAY_MS
    createds = sorted(g.anchor_ms - span + int(g.rng.random() * (span - 1_000)) for _ in range(cfg.audit))
    for i in range(1, len(createds)):
        if createds[i] <= createds[i - 1]:
            createds[i] = createds[i - 1] + 1
    data.audit = Collection([make_entry(g, i, c, data) for i, c in enumerate(createds)])  # oldest first
    data.audit_ms = createds


def add_entries(data: Any, count: int) -> List[Dict[str, Any]]:
    """Record `count` new actions, created after the newest entry and no later than the sandbox clock (move it on
    with `advance()` first), for a test of the next incremental sync. Returns the new entries."""
    with data.lock:
        g = data._live
        newest = data.audit_ms[-1] if data.audit_ms else data.clock_ms - DAY_MS
        step = max(1, (data.clock_ms - newest) // (count + 1))
        added = []
        for j in range(count):
            created = newest + (j + 1) * step
            entry = make_entry(g, len(data.audit), created, data)
            data.audit.records.append(entry)
            data.audit.parts.append(dumps(entry))
            data.audit_ms.append(created)
            added.append(entry)
        return added


def _bound(req: Request, name: str) -> Optional[int]:
    """A `from`/`to` value as the configured reading parses it (epoch ms), or None: absent, or in the other form."""
    raw = (req.arg(name) or "").strip()
    if not raw:
        return None
    if req.data.config.audit_time_format == "ms":
        return int(raw) if raw.isdigit() else None
    if raw.isdigit():
        return None
    try:
        return parse_iso_ms(raw if "T" in raw else raw + "T00:00:00Z")
    except ValueError:
        return None


def list_audit(req: Request) -> Response:
    audit = req.data.audit
    first = int(req.data.config.audit_first_page)
    page = req.int_arg("page", first, minimum=first)
    size = capped_limit(req, "pageSize", default=25)
    lo_ms, hi_ms = _bound(req, "from"), _bound(req, "to")
    lo = 0 if lo_ms is None else bisect.bisect_left(req.data.audit_ms, lo_ms)
    hi = len(audit) if hi_ms is None else bisect.bisect_right(req.data.audit_ms, hi_ms)
    newest_first = range(hi - 1, lo - 1, -1)[: req.data.config.audit_cap]
    window = newest_first[(page - first) * size : (page - first + 1) * size]
    return raw_json(audit.wrap(b'{"data":[', window, b"]}"))


ROUTES = [route("GET", "/audit", list_audit, restricted=True)]
