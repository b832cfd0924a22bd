"""Analytics family: report metadata and report rows.

    GET /analytics/metadata              {"reports": {<reportName>: {reportName, type, description, filters,
                                                      members, mandatoryNonUserFilters, supportedTimeDimensions}}}
    GET /analytics/reports/{name}?dateRange=<YYYY-MM-DD>&dateRange=<YYYY-MM-DD>&granularity=<g>
                                          {"data": [...], "timeDimensions": {dateRange, granularity}}

Rules (README "Analytics"): exactly two `dateRange` days (inclusive); `granularity` is `hour|day|week|month` or
absent (one aggregate row); it must be one of the report's `supportedTimeDimensions`, and the range must lie within
that entry's `minDateRangeInterval`..`maxDateRangeInterval` (strings such as "45 days", "3 months", "1 year"), read
the strictest way: the last day minus the first at least the minimum, the days counted inclusively at most the
maximum -- else 400 BadRequestError "Passed structure is invalid - [Time dimensions are not supported for target
report: <name>]". An unknown report is a 400 ("Invalid report name"). Data exists from the first build day
(`build_days` before the anchor) to the anchor day; a range without any answers per `analytics_empty_range`:
500 "Could not get analytics report" (`error_500`, documented) or 200 with no rows (`empty_200`). Values are a
deterministic function of (seed, report, day, key), so overlapping ranges agree.

Row shapes: credit reports `{time, key, value}` (confirmed), committer reports assumed the same (no source shows
one); build-duration reports (buildAvgDuration, buildP50Duration, buildP90Duration) one aggregate row per bucket,
without `key` (and without `time` when no granularity is given), counts as strings, `successRate` in percent
(docs.codefresh.io analytics API draft). That draft asks with `granularity=day` and shows one row without `time`:
whether build reports bucket by the granularity at all is open, so `analytics_build_rows` = `bucketed` (a row per
bucket, with `time`; the default) or `aggregate` (one row for the whole range, without `time`).
"""

from __future__ import annotations

import random
import re
from calendar import monthrange
from datetime import date, timedelta
from typing import Any, Dict, List, Optional, Tuple

from .common import DAY_MS, ApiError, Request, Response, day_ms, dumps, iso, parse_day, raw_json, route

BUILD_ROWS = ("bucketed", "aggregate")  # the readings of `analytics_build_rows` (module docstring)


def _dims(*entries: Tuple[Optional[str], str, str]) -> List[Dict[str, Any]]:
    return [{"granularity": g, "minDateRangeInterval": lo, "maxDateRangeInterval": hi} for g, lo, hi in entries]


# Documented bounds: KB retrieve-usage-data-api (credits, committers) and the analytics API draft (build reports).
CREDIT_DIMS = _dims((None, "1 day", "1 year"), ("month", "1 day", "1 year"), ("day", "2 days", "45 days"))
BUILD_DIMS = _dims(
    (None, "1 day", "6 months"),
    ("hour", "1 day", "4 days"),
    ("day", "1 day", "3 months"),
    ("week", "1 day", "6 months"),
    ("month", "1 day", "6 months"),
)
# reportName -> (type, description, key name, supported time dimensions)
REPORTS: Dict[str, Dict[str, Any]] = {
    "creditConsumption": {
        "type": "credits",
        "description": "Credits consumed per runtime size",
        "key": "size",
        "dims": CREDIT_DIMS,
    },
    "pipelineCreditConsumption": {
        "type": "credits",
        "description": "Credits consumed per pipeline",
        "key": "pipeline",
        "dims": CREDIT_DIMS,
    },
    "activeCommitters": {
        "type": "committers",
        "description": "Active committers per month",
        "key": "committer",
        "dims": _dims(("month", "3 months", "1 year")),
    },
    "buildAvgDuration": {
        "type": "builds",
        "description": "Average build duration",
        "key": "pipeline",
        "dims": BUILD_DIMS,
    },
    "buildP50Duration": {
        "type": "builds",
        "description": "Median build duration",
        "key": "pipeline",
        "dims": BUILD_DIMS,
    },
    "buildP90Duration": {
        "type": "builds",
        "description": "90th percentile build duration",
        "key": "pipeline",
        "dims": BUILD_DIMS,
    },
}
GRANULARITIES = ("hour", "day", "week", "month")


def metadata_record(name: str) -> Dict[str, Any]:
    r = REPORTS[name]
    is_build = r["type"] == "builds"
    return {
        "reportName": name,
        "type": r["type"],
        "description": r["description"],
        "filters": [
            {"name": "pipelineId", "type": "string[]", "description": "Pipeline ids"},
            {"name": "projectId", "type": "string[]", "description": "Project ids"},
        ]
        + ([{"name": "status", "type": "string[]", "description": "Build statuses"}] if is_build else []),
        "members": (
            [
                {"name": "time", "title": "Time"},
                {"name": "totalBuilds", "title": "Total builds"},
                {"name": "successfulBuilds", "title": "Successful builds"},
                {"name": "successRate", "title": "Success rate"},
                {"name": "totalDuration", "title": "Total duration"},
            ]
            if is_build
            else [
                {"name": "time", "title": "Time"},
                {"name": "key", "title": r["key"].capitalize()},
                {"name": "value", "title": "Value"},
            ]
        ),
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
    # Analytics data exists from the first day with builds to the anchor day.
    data.analytics_first_day = date.fromisoformat(iso(data.anchor_ms - cfg.build_days * DAY_MS)[:10])


def _value(seed: int, name: str, day: date, key: str) -> Dict[str, Any]:
    rng = random.Random(f"{seed}:{name}:{day.isoformat()}:{key}")
    if name in ("creditConsumption", "pipelineCreditConsumption"):
        return {"value": round(rng.uniform(0, 400), 2)}
    if name == "activeCommitters":
        return {"value": rng.randint(0, 12)}
    total = rng.randint(0, 40)
    ok = rng.randint(0, total)
    base = {"buildAvgDuration": 1.0, "buildP50Duration": 0.9, "buildP90Duration": 1.8}[name]
    duration = int(rng.uniform(60_000, 900_000) * base) if total else 0
    return {
        "totalBuilds": total,
        "successfulBuilds": ok,
        "duration": duration,
        "initializing": duration // 4,
        "pendingApproval": duration // 10 if rng.random() < 0.2 else 0,
    }


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
    is_build = r["type"] == "builds"
    if is_build and data.config.analytics_build_rows == "aggregate":
        granularity = None  # one row for the whole range, without `time`, whatever granularity was asked
    keys = ["all"] if is_build else data.analytics_keys[r["key"]]
    anchor_day = date.fromisoformat(iso(data.anchor_ms)[:10])
    buckets: Dict[Tuple[date, str], List[Dict[str, Any]]] = {}
    day = max(first, data.analytics_first_day)
    while day <= min(last, anchor_day):
        for key in keys:
            subkeys = data.analytics_keys["pipeline"] if is_build else [key]
            for sub in subkeys:  # build reports aggregate over the pipelines
                buckets.setdefault((_bucket(day, granularity, first), key), []).append(
                    _value(data.seed, name, day, sub)
                )
        day += timedelta(days=1)
    rows = []
    for (bucket, key), values in buckets.items():
        if is_build:
            total = sum(v["totalBuilds"] for v in values)
            if not total:
                continue
            ok = sum(v["successfulBuilds"] for v in values)

            def weighted(field: str, values: List[Dict[str, Any]] = values, total: int = total) -> int:
                return int(sum(v[field] * v["totalBuilds"] for v in values) / total)

            duration = weighted("duration")
            row: Dict[str, Any] = {} if granularity is None else {"time": iso(day_ms(bucket))[:-1]}
            row.update(
                totalBuilds=str(total),
                successfulBuilds=str(ok),
                successRate=round(100 * ok / total, 2),
                totalDuration=duration,
                initializingDuration=weighted("initializing"),
                runningDuration=duration - weighted("initializing") - weighted("pendingApproval"),
                pendingApprovalDuration=weighted("pendingApproval"),
                pendingConcurrencyDuration=0,
                delayDuration=0,
            )
        elif name == "activeCommitters":
            row = {"time": iso(day_ms(bucket)), "key": key, "value": max(v["value"] for v in values)}
        else:
            row = {"time": iso(day_ms(bucket)), "key": key, "value": round(sum(v["value"] for v in values), 2)}
        rows.append(row)
    return rows


# --- the range bounds of a report (strictest reading of the documented bounds) ------------------------------------
_INTERVAL = re.compile(r"^(\d+) (day|days|month|months|year|years)$")


def _after(day: date, interval: str) -> date:
    amount, unit = _INTERVAL.match(interval).groups()  # type: ignore[union-attr]
    if unit.startswith("day"):
        return day + timedelta(days=int(amount))
    months = int(amount) * (12 if unit.startswith("year") else 1)
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def range_allowed(first: date, last: date, low: str, high: str) -> bool:
    """last - first >= low, and first..last (both counted) <= high."""
    return last >= _after(first, low) and last < _after(first, high)


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
        raise _bad(f"Invalid dateRange {days!r}: expected YYYY-MM-DD") from None
    if last < first:
        raise _bad("dateRange: the second day is before the first")
    granularity = req.arg("granularity") or None
    if granularity is not None and granularity not in GRANULARITIES:
        raise _bad(f"Invalid granularity '{granularity}'")
    dims = {d["granularity"]: d for d in REPORTS[name]["dims"]}
    entry = dims.get(granularity)
    if entry is None or not range_allowed(first, last, entry["minDateRangeInterval"], entry["maxDateRangeInterval"]):
        raise _bad(f"Passed structure is invalid - [Time dimensions are not supported for target report: {name}]")
    return name, first, last, granularity


def get_metadata(req: Request) -> Response:
    return raw_json(req.data.analytics_metadata)


def get_report(req: Request) -> Response:
    name, first, last, granularity = parse_report_request(req)
    req.app.analytics_gate(req, (name, first.isoformat(), last.isoformat()))
    rows = report_rows(req.data, name, first, last, granularity)
    if not rows and req.data.config.analytics_empty_range == "error_500":
        raise ApiError(500, "InternalServerError", "Could not get analytics report", code="500")
    return raw_json(
        dumps(
            {
                "data": rows,
                "timeDimensions": {"dateRange": [first.isoformat(), last.isoformat()], "granularity": granularity},
            }
        )
    )


ROUTES = [
    route("GET", "/analytics/metadata", get_metadata),
    route("GET", "/analytics/reports/{name}", get_report),
]
