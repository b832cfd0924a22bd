"""Analytics family: report metadata and report rows.

    GET /analytics/metadata              {"reports": {<reportName>: {reportName, type, description, filters,
                                                      members, mandatoryNonUserFilters, supportedTimeDimensions}}}
    GET /analytics/reports/{name}?dateRange=<YYYY-MM-DD>&dateRange=<YYYY-MM-DD>&granularity=<g>
                                          {"data": [{time, key, value, ...}], "timeDimensions": {dateRange,
                                                                                                 granularity}}

Rules: exactly two `dateRange` days (inclusive); `granularity` is `hour|day|week|month` or absent (one aggregate row
per key, `time` = the first day); it must be one of the report's `supportedTimeDimensions` and the range must not
exceed that entry's `maxDateRangeInterval` (days) -- else 400 `BadRequestError`. An unknown report is a 400
("Invalid report name"). Rows exist for days up to the anchor day; values are a deterministic function of
(seed, report, day, key), so overlapping ranges agree.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Dict, List, Optional, Tuple

from .common import ApiError, Request, Response, day_ms, dumps, iso, parse_day, raw_json, route


def _dims(*entries: Tuple[Optional[str], int, int]) -> List[Dict[str, Any]]:
    return [{"granularity": g, "minDateRangeInterval": lo, "maxDateRangeInterval": hi} for g, lo, hi in entries]


# reportName -> (type, description, key name, row value fields, supported time dimensions (granularity, min, max days))
REPORTS: Dict[str, Dict[str, Any]] = {
    "creditConsumption": {
        "type": "credits", "description": "Credits consumed per runtime size",
        "key": "size", "dims": _dims((None, 1, 366), ("month", 1, 366), ("day", 1, 45))},
    "pipelineCreditConsumption": {
        "type": "credits", "description": "Credits consumed per pipeline",
        "key": "pipeline", "dims": _dims((None, 1, 366), ("month", 1, 366), ("day", 1, 45))},
    "activeCommitters": {
        "type": "committers", "description": "Active committers per month",
        "key": "committer", "dims": _dims(("month", 1, 366))},
    "buildAvgDuration": {
        "type": "builds", "description": "Average build duration per pipeline (seconds)",
        "key": "pipeline", "dims": _dims((None, 1, 183), ("day", 1, 45), ("week", 1, 183), ("month", 1, 183))},
    "buildP50Duration": {
        "type": "builds", "description": "Median build duration per pipeline (seconds)",
        "key": "pipeline", "dims": _dims((None, 1, 183), ("day", 1, 45), ("week", 1, 183), ("month", 1, 183))},
    "buildP90Duration": {
        "type": "builds", "description": "90th percentile build duration per pipeline (seconds)",
        "key": "pipeline", "dims": _dims((None, 1, 183), ("day", 1, 45), ("week", 1, 183), ("month", 1, 183))},
}
GRANULARITIES = ("hour", "day", "week", "month")


def metadata_record(name: str) -> Dict[str, Any]:
    r = REPORTS[name]
    is_build = r["type"] == "builds"
    return {
        "reportName": name,
        "type": r["type"],
        "description": r["description"],
        "filters": [{"name": "pipelineId", "type": "string[]", "description": "Pipeline ids"},
                    {"name": "projectId", "type": "string[]", "description": "Project ids"}]
        + ([{"name": "status", "type": "string[]", "description": "Build statuses"}] if is_build else []),
        "members": [{"name": "time", "title": "Time"}, {"name": "key", "title": r["key"].capitalize()},
                    {"name": "value", "title": "Value"}]
        + ([{"name": "totalBuilds", "title": "Total builds"}, {"name": "successfulBuilds", "title": "Successful"},
            {"name": "successRate", "title": "Success rate"}, {"name": "totalDuration", "title": "Total duration"}]
           if is_build else []),
        "mandatoryNonUserFilters": [{"member": "accountId", "operator": "equals"}],
        "supportedTimeDimensions": r["dims"],
    }


def generate(g: Any, cfg: Any, data: Any) -> None:
    data.analytics_metadata = dumps({"reports": {name: metadata_record(name) for name in REPORTS}})
    infos = data.pipeline_infos[:5] or []
    data.analytics_keys = {
        "size": ["small", "medium", "large"],
        "pipeline": [p.name for p in infos] or ["demo/hello-world"],
        "committer": [u["userName"] for u in data.users.records[:6]],
    }


def _value(seed: int, name: str, day: date, key: str) -> Dict[str, Any]:
    rng = random.Random(f"{seed}:{name}:{day.isoformat()}:{key}")
    if name in ("creditConsumption", "pipelineCreditConsumption"):
        return {"value": round(rng.uniform(0, 400), 2)}
    if name == "activeCommitters":
        return {"value": rng.randint(0, 12)}
    total = rng.randint(0, 40)
    ok = rng.randint(0, total)
    base = {"buildAvgDuration": 1.0, "buildP50Duration": 0.9, "buildP90Duration": 1.8}[name]
    duration = round(rng.uniform(60, 900) * base, 1) if total else 0
    return {"value": duration, "totalBuilds": total, "successfulBuilds": ok,
            "successRate": round(ok / total, 4) if total else None, "totalDuration": round(duration * total, 1)}


def _bucket(day: date, granularity: Optional[str], first: date) -> date:
    if granularity is None:
        return first
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def report_rows(data: Any, name: str, first: date, last: date, granularity: Optional[str]) -> List[Dict[str, Any]]:
    r = REPORTS[name]
    keys = data.analytics_keys[r["key"]]
    anchor_day = date.fromisoformat(iso(data.anchor_ms)[:10])
    buckets: Dict[Tuple[date, str], List[Dict[str, Any]]] = {}
    day = first
    while day <= min(last, anchor_day):
        for key in keys:
            buckets.setdefault((_bucket(day, granularity, first), key), []).append(_value(data.seed, name, day, key))
        day += timedelta(days=1)
    rows = []
    for (bucket, key), values in buckets.items():
        row: Dict[str, Any] = {"time": iso(day_ms(bucket)), "key": key}
        if r["type"] == "builds":
            total = sum(v["totalBuilds"] for v in values)
            ok = sum(v["successfulBuilds"] for v in values)
            duration = round(sum(v["totalDuration"] for v in values), 1)
            row.update(value=round(duration / total, 1) if total else 0, totalBuilds=total, successfulBuilds=ok,
                       successRate=round(ok / total, 4) if total else None, totalDuration=duration)
        elif name == "activeCommitters":
            row["value"] = max(v["value"] for v in values)
        else:
            row["value"] = round(sum(v["value"] for v in values), 2)
        rows.append(row)
    return rows


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequestError", message, code="400")


def parse_report_request(req: Request) -> Tuple[str, date, date, Optional[str]]:
    name = req.params["name"]
    if name not in REPORTS:
        raise _bad(f"Invalid report name '{name}'")
    days = req.query.get("dateRange", []) or req.query.get("dateRange[]", [])
    if len(days) != 2:
        raise _bad("dateRange must be given twice: ?dateRange=YYYY-MM-DD&dateRange=YYYY-MM-DD")
    try:
        first, last = parse_day(days[0]), parse_day(days[1])
    except ValueError:
        raise _bad(f"Invalid dateRange {days!r}: expected YYYY-MM-DD")
    if last < first:
        raise _bad("dateRange: the second day is before the first")
    granularity = req.arg("granularity") or None
    if granularity is not None and granularity not in GRANULARITIES:
        raise _bad(f"Invalid granularity '{granularity}'")
    dims = {d["granularity"]: d for d in REPORTS[name]["dims"]}
    if granularity not in dims:
        raise _bad(f"Report {name} does not support granularity '{granularity or 'none'}'")
    span = (last - first).days + 1
    if span > dims[granularity]["maxDateRangeInterval"]:
        raise _bad(f"Report {name}: a range of {span} days is too long for granularity "
                   f"'{granularity or 'none'}' (max {dims[granularity]['maxDateRangeInterval']} days)")
    return name, first, last, granularity


def get_metadata(req: Request) -> Response:
    return raw_json(req.data.analytics_metadata)


def get_report(req: Request) -> Response:
    name, first, last, granularity = parse_report_request(req)
    req.app.analytics_gate(req, (name, first.isoformat(), last.isoformat()))
    rows = report_rows(req.data, name, first, last, granularity)
    return raw_json(dumps({"data": rows, "timeDimensions": {"dateRange": [first.isoformat(), last.isoformat()],
                                                            "granularity": granularity}}))


ROUTES = [
    route("GET", "/analytics/metadata", get_metadata),
    route("GET", "/analytics/reports/{name}", get_report),
]
