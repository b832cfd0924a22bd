"""Ask a real Codefresh account the questions the evidence leaves open, and say whether the connector fits the answers.

    python scripts/probe_api.py --api-key KEY                    # https://g.codefresh.io/api
    CODEFRESH_API_KEY=KEY python scripts/probe_api.py --base-url https://codefresh.example.com/api

Read-only: it sends at most 30 requests: 25 GETs (/user, then images 3, builds 4, audit 8, analytics 4, Hermes 3,
environments 1, annotations 1), each to an endpoint on a fixed list of safe reads, and 5 GraphQL queries to the GitOps
API (`POST /2.0/api/graphql` on the same host), each made only of root fields on a fixed list of list queries
(SAFE_QUERY_FIELDS), never a mutation. One at a time with a short pause, never a write and never a request with a side
effect, and it is done in under a minute (no request starts after TIME_BUDGET_SECONDS). It never prints the key, nor
any id, name or record it reads: the output holds what the answers had in common (counts, statuses, which parameters
moved a listing, the schema's field names and error texts) and the date-times it asked about, so it can be pasted into
an issue as is. A key without a scope answers that question with "could not tell" and the others go on.

The questions (their evidence and readings: docs/api-notes.md sections 8, 10 and 11): how /images pages, whether
/workflow's dates honour the time of day, which from/to format filters /audit and whether its first page is 0 or 1,
what analytics answer without data, per bucket and for a 30-day activeCommitters window, whether 429s carry
Retry-After, Hermes triggers' event-data, environments' _id, /annotations matching nothing, and the GitOps GraphQL
API's list queries, refusal status, `pagination`, gitopsReleases without a filter, page size and introspection.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import requests

from source_codefresh.graphql import GRAPHQL_PATH, QUERY_FIELDS, graphql_url
from source_codefresh.paging import ISSUE_TRACKER

DEFAULT_BASE_URL = "https://g.codefresh.io/api"
TIME_BUDGET_SECONDS = 45.0  # no request starts later: with the last one's timeout the probe ends in under a minute
REQUEST_TIMEOUT_SECONDS = 10.0
PAUSE_SECONDS = 0.2  # between requests: a handful of requests a second never nears a rate limit

# Every GET goes to one of these paths; none of them changes anything in the account.
SAFE_READS = (
    re.compile(r"^/user$"),
    re.compile(r"^/images$"),
    re.compile(r"^/workflow$"),
    re.compile(r"^/audit$"),
    re.compile(r"^/analytics/reports/[A-Za-z0-9]+$"),
    re.compile(r"^/hermes/triggers$"),
    re.compile(r"^/hermes/events$"),
    re.compile(r"^/environments-v2$"),
    re.compile(r"^/annotations$"),
)
# Every GraphQL request is a `query` made only of these root fields (checked before it is sent): the connector's own
# list queries (its allowlist, source_codefresh/graphql.py QUERY_FIELDS) and names no client shows; an unknown one is
# refused by validation, which is what the probe asks. No field here has a side effect: the app-proxy's `sync` and
# `appRollback`, which are queries with side effects, are not on it (nor is the app-proxy ever called). `__schema` is
# introspection, which reads only the schema (the engine answers it without a resolver, so nothing of the account is
# read or changed). SENTINEL is a field no schema has: a document that holds it fails validation, so none of its
# fields is executed.
SENTINEL = "sourceCodefreshProbeSentinel"
EVIDENCED_LISTS = tuple(name for name in QUERY_FIELDS if name not in ("promotions", "productReleases"))
UNPAGED_LISTS = ("runtimes", "gitSources", "components", "pipelines", "workflows")  # read whole by Codefresh's SDK
UNEVIDENCED_LISTS = ("applications", "products", "environments", "promotionFlows", "doraMetrics")
SAFE_QUERY_FIELDS = frozenset(QUERY_FIELDS + UNEVIDENCED_LISTS + ("__schema", SENTINEL))


# ---------------------------------------------------------------------------------------------------------------------
# answers and findings
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    """What one GET got: the status (None when no answer came), the parsed JSON body and the headers."""

    status: Optional[int]
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    problem: str = ""  # why there is no usable answer (a connection error, the time budget, a 429 earlier)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def message(self) -> str:
        body = self.body
        if isinstance(body, Mapping):
            return str(body.get("message") or body.get("error") or "")
        return ""


@dataclass
class Finding:
    """The answer to one question: what was seen, the reading of the API it shows, and whether the connector fits."""

    question: str
    reading: str  # e.g. "offset", "cursor", "exact"; "unknown" when the answers could not tell
    seen: str  # one sentence of what the answers showed
    fits: Optional[bool]  # None: could not tell, or nothing to fit
    connector: str  # what the connector does under this reading


# What the connector does under each reading, and whether that is right. Readings the connector is not (yet) right
# under say so, so that a user who sees one reports it.
CONNECTOR = {
    "images": {
        "cursor": (True, "follows pagination.nextPage with page numbers in one pagination session"),
        "offset": (
            True,
            "pages by offset (records so far) until an empty page, since the answer has no pagination object",
        ),
        "both": (True, "follows pagination.nextPage, or pages by offset until an empty page without it"),
        "offset_with_pagination_object": (
            False,
            "sends only page numbers when the answer has pagination.nextPage, "
            "which this server ignores: the sync fails with a message",
        ),
        "ignores_paging": (
            False,
            "fails the sync with one sentence (the same page twice) instead of reading only the first page",
        ),
        "bare_array": (False, "expects the images under `docs`; the sync fails with a message"),
    },
    "workflow_dates": {
        "exact": (True, "asks from the window's start to the next midnight and keeps exactly the window's builds"),
        "date_only": (
            True,
            "asks from the window's start to the next midnight and keeps exactly the window's builds: the whole "
            "days this server answers hold them all, and a build of a boundary day is kept by one window only",
        ),
        "date_first_instant": (
            True,
            "asks up to the midnight after the window's end, so the day this server cuts at its first instant still "
            "holds the window's last builds; it keeps exactly the window's builds",
        ),
    },
    "audit_time_format": {
        "ms": (True, "sends from/to in epoch milliseconds"),
        "both": (True, "sends from/to in epoch milliseconds"),
        "iso": (True, "asks once per sync which form filters, then sends ISO date-times"),
    },
    "audit_first_page": {
        "1": (
            True,
            "reads each window's first page without `page`, then pages 1, 2, 3 ...; page 1 repeats the first page "
            "and its entries are not emitted again (one extra request per window of more than one page)",
        ),
        "0": (
            True,
            "reads each window's first page without `page`, then pages 1, 2, 3 ...; page 1 is the second page; "
            "it never sends page 0",
        ),
    },
    "analytics_empty_range": {
        "empty_200": (True, "takes an empty answer as a range without rows"),
        "error_500": (True, "skips a window answered 500 'Could not get analytics report' with one line, no retry"),
    },
    "analytics_build_rows": {
        "bucketed": (True, "emits a row per bucket, dated by its `time`, with the dateRange it was read with"),
        "aggregate": (
            True,
            "emits each window's one row, dated by the window's first new day, with the dateRange it covers "
            "(date_range_first, date_range_last)",
        ),
    },
    "active_committers_30_days": {
        "accepts": (True, "asks for windows within the report's own metadata bounds"),
        "rejects": (True, "asks for windows within the report's own metadata bounds (at least 3 months here)"),
    },
    "environments_id": {
        "present": (True, "keys environments on `name` (from metadata.name), not on `_id`"),
        "absent": (True, "keys environments on `name` (from metadata.name), not on `_id`"),
        "no_name": (False, "keys environments on `name` (from metadata.name), which these items lack"),
    },
    "annotations_none": {
        "empty_200": (True, "reads an empty list as 'no build was started' in the pipeline-run recovery lookup"),
        "not_found_404": (True, "reads a 404 as 'no build was started' in the pipeline-run recovery lookup"),
    },
    "retry_after": {
        "with": (True, "waits what Retry-After asks"),
        "without": (True, "backs off exponentially when a 429 has no Retry-After"),
    },
    # GitOps (the gitops_* streams, source_codefresh/graphql.py).
    "gitops_schema": {
        "current": (True, "reads `promotions` (promotions and product releases in one stream)"),
        "before_promotions": (True, "falls back to `productReleases`, one product of gitops_products at a time"),
    },
    "gitops_invalid_query_status": {
        "400": (True, "reads the `errors` of a 400 answer as the server's refusal"),
        "200": (True, "reads the `errors` of a 200 answer"),
    },
    "gitops_list_pagination": {
        "evidenced_only": (True, "sends `pagination` to the lists Codefresh's SDK reads whole only if pageInfo asks"),
        "every_list": (True, "follows pageInfo.hasNextPage on every list"),
        "mixed": (True, "sends `pagination` only where pageInfo says there is more"),
    },
    "gitops_releases_filter": {
        "optional": (True, "reads gitopsReleases account-wide"),
        "required": (True, "reads gitopsReleases one application at a time, those of gitops_applications"),
    },
    "gitops_page_cap": {
        "50": (True, "asks pages of 50"),
        "clamp_50": (True, "asks pages of 50"),
        "none": (True, "asks pages of 50"),
        "below_50": (False, "asks pages of 50, which this server refuses"),
    },
    "gitops_introspection": {
        "disabled": (True, "never depends on introspection"),
        "enabled": (True, "never depends on introspection"),
    },
}


def finding(question: str, key: str, reading: str, seen: str) -> Finding:
    fits, what = CONNECTOR[key].get(reading, (None, "no verdict for this reading"))
    return Finding(question, reading, seen, fits, what)


def cannot_tell(question: str, seen: str) -> Finding:
    return Finding(question, "unknown", seen, None, "-")


def refused(question: str, path: str, scope: str, *answers: Answer, need_ok: bool = False) -> Optional[Finding]:
    """A finding for a question when Codefresh refused or did not answer one of its requests (with `need_ok`, or
    answered one with an error), from the first such answer; else None."""
    for answer in answers:
        if answer.status in (401, 403):
            return cannot_tell(
                question,
                f"Codefresh answered {path} with HTTP {answer.status}: the key may not read it "
                f"(it needs the '{scope}' scope); add the scope to answer this question",
            )
        if answer.status == 429:
            return cannot_tell(question, f"Codefresh rate-limited {path} (HTTP 429); run the probe again later")
        if answer.status is None:
            return cannot_tell(question, f"no answer from {path} ({answer.problem})")
        if need_ok and not answer.ok:
            return cannot_tell(question, f"{path} answered HTTP {answer.status} {answer.message}".strip())
    return None


# ---------------------------------------------------------------------------------------------------------------------
# the questions: pure functions of the answers (unit-tested with canned answers)
# ---------------------------------------------------------------------------------------------------------------------
Q_IMAGES = "How does GET /images page?"
Q_WORKFLOW = "Does GET /workflow honour the time of day in startDate/endDate?"
Q_AUDIT_FORMAT = "Which from/to format filters GET /audit?"
Q_AUDIT_PAGE = "Is the first page of GET /audit page 0 or page 1?"
Q_ANALYTICS_EMPTY = "What does an analytics range without data answer?"
Q_COMMITTERS = "Does the activeCommitters report accept a 30-day window?"
Q_BUILD_ROWS = "Do build-duration reports answer a row per granularity bucket?"
Q_RETRY_AFTER = "Do 429 answers carry Retry-After?"
Q_HERMES = "Do Hermes triggers carry empty event-data, and which events does /hermes/events list?"
Q_ENVIRONMENTS_ID = "Do GET /environments-v2 items carry an _id (and a metadata.name)?"
Q_ANNOTATIONS = "What does GET /annotations answer when nothing matches?"
Q_GITOPS_QUERIES = "Which GitOps list queries does the GraphQL API have?"
Q_GITOPS_STATUS = "What HTTP status answers a GraphQL query the schema refuses?"
Q_GITOPS_LIST_PAGINATION = "Do the GitOps lists Codefresh's SDK reads whole take a pagination argument?"
Q_GITOPS_RELEASES = "Does gitopsReleases answer without an application filter?"
Q_GITOPS_PAGE_CAP = "What is the largest GitOps page (first) the API accepts?"
Q_GITOPS_INTROSPECTION = "Does the GraphQL API answer introspection?"


def record_ids(body: Any, key: Optional[str] = "docs") -> Optional[List[str]]:
    """The ids of the records of an answer (`docs`, `workflows.docs`, `data`, or a bare array), in order."""
    node = body
    for part in key.split(".") if key else []:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, list):
        return None
    return [str(r.get("id", r.get("_id"))) if isinstance(r, Mapping) else json.dumps(r, sort_keys=True) for r in node]


def classify_images(first: Answer, by_page: Answer, by_offset: Answer, limit: int) -> Finding:
    """`first`: limit=N&page=1; `by_page`: limit=N&page=2 (same session); `by_offset`: limit=N&offset=N."""
    if problem := refused(Q_IMAGES, "/images", "images", first, by_page, by_offset, need_ok=True):
        return problem
    if isinstance(first.body, list):
        return finding(Q_IMAGES, "images", "bare_array", "/images answers a bare array, not {docs: [...]}")
    ids, page_ids, offset_ids = record_ids(first.body), record_ids(by_page.body), record_ids(by_offset.body)
    if ids is None or page_ids is None or offset_ids is None:
        return cannot_tell(Q_IMAGES, "/images answered JSON without a `docs` list")
    pagination = first.body.get("pagination") if isinstance(first.body, Mapping) else None
    has_next = isinstance(pagination, Mapping) and "nextPage" in pagination
    described = (
        f"answers carry a pagination object (nextPage: {json.dumps(pagination.get('nextPage'))})"
        if has_next
        else "answers carry no pagination object"
        + (
            f" (keys: {', '.join(sorted(k for k in first.body if k != 'docs'))})"
            if isinstance(first.body, Mapping) and len(first.body) > 1
            else ""
        )
    )
    if len(ids) < limit:
        return cannot_tell(
            Q_IMAGES,
            f"the account has {len(ids)} image(s), fewer than one page of {limit}: "
            f"paging cannot be told apart; {described}",
        )
    page_moves = bool(page_ids) and page_ids != ids
    offset_moves = bool(offset_ids) and offset_ids != ids
    seen = (
        f"page=2 {'returns other images' if page_moves else 'returns the first page again'}; "
        f"offset={limit} {'returns other images' if offset_moves else 'returns the first page again'}; {described}"
    )
    if page_moves and offset_moves:
        return finding(Q_IMAGES, "images", "both", seen)
    if page_moves:
        return finding(Q_IMAGES, "images", "cursor", seen)
    if offset_moves:
        return finding(Q_IMAGES, "images", "offset_with_pagination_object" if has_next else "offset", seen)
    return finding(Q_IMAGES, "images", "ignores_paging", seen)


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def workflow_windows(created: str) -> Dict[str, Tuple[str, str]]:
    """The windows asked about the newest build (created at T on day D): [T, T], [T + 1 ms, end of D], [D, D]."""
    t = parse_time(created)
    day = t.strftime("%Y-%m-%d")
    end_of_day = t.replace(hour=23, minute=59, second=59, microsecond=999_000)
    return {
        "exact": (iso_ms(t), iso_ms(t)),
        "after": (iso_ms(t + timedelta(milliseconds=1)), iso_ms(end_of_day)),
        "dates": (day, day),
    }


def classify_workflow_dates(newest: Answer, exact: Answer, after: Answer, dates: Answer) -> Finding:
    """`newest`: the newest build; the others list the windows of `workflow_windows` of its creation time."""
    if problem := refused(Q_WORKFLOW, "/workflow", "workflow", newest, exact, after, dates, need_ok=True):
        return problem
    docs = ((newest.body or {}).get("workflows") or {}).get("docs") if isinstance(newest.body, Mapping) else None
    if not docs:
        return cannot_tell(Q_WORKFLOW, "the account has no build to test the date filter with")
    build = docs[0]
    t = parse_time(build["created"])
    if (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0) or (t.hour, t.minute, t.second) == (23, 59, 59):
        return cannot_tell(Q_WORKFLOW, "the newest build was created at a day's edge; run the probe again later")
    target = str(build.get("id"))
    found = {
        name: target in (record_ids(a.body, "workflows.docs") or [])
        for name, a in (("exact", exact), ("after", after), ("dates", dates))
    }
    seen = (
        f"the newest build {'is' if found['exact'] else 'is not'} listed for [its created, its created], "
        f"{'is' if found['after'] else 'is not'} listed from 1 ms later to the end of its day, and "
        f"{'is' if found['dates'] else 'is not'} listed for startDate=endDate=<its day> (YYYY-MM-DD)"
    )
    if found["exact"] and not found["after"]:
        return finding(Q_WORKFLOW, "workflow_dates", "exact", seen)
    if found["exact"] and found["after"]:
        return finding(Q_WORKFLOW, "workflow_dates", "date_only", seen)
    if not found["exact"] and not found["after"]:
        return finding(Q_WORKFLOW, "workflow_dates", "date_first_instant", seen)
    return cannot_tell(Q_WORKFLOW, seen)


def audit_windows(created: str) -> Dict[str, Tuple[str, str]]:
    """From/to around the newest audit entry (created at T), as epoch ms and as ISO: a day before T to 1 ms before
    T (leaves it out) and a day before T to 1 ms after T (takes it in)."""
    t = parse_time(created)
    before, excl, incl = t - timedelta(days=1), t - timedelta(milliseconds=1), t + timedelta(milliseconds=1)
    ms = lambda moment: str(int(moment.timestamp() * 1000))  # noqa: E731
    return {
        "ms_excluding": (ms(before), ms(excl)),
        "ms_including": (ms(before), ms(incl)),
        "iso_excluding": (iso_ms(before), iso_ms(excl)),
        "iso_including": (iso_ms(before), iso_ms(incl)),
    }


def _filters(excluding: Answer, including: Answer, target: str) -> Tuple[bool, str]:
    if not excluding.ok or not including.ok:
        bad = excluding if not excluding.ok else including
        return False, f"refused (HTTP {bad.status}{': ' + bad.message if bad.message else ''})"
    left_out = target not in (record_ids(excluding.body, "data") or [])
    taken_in = target in (record_ids(including.body, "data") or [])
    if left_out and taken_in:
        return True, "filters"
    if not left_out:
        return False, "is ignored (a window before the entry still lists it)"
    return False, "lists nothing (a window around the entry does not list it)"


def classify_audit_format(
    newest: Answer, ms_excluding: Answer, ms_including: Answer, iso_excluding: Answer, iso_including: Answer
) -> Finding:
    if problem := refused(
        Q_AUDIT_FORMAT, "/audit", "audit", newest, ms_excluding, ms_including, iso_excluding, iso_including
    ):
        return problem
    if not newest.ok or not record_ids(newest.body, "data"):
        return cannot_tell(Q_AUDIT_FORMAT, "the audit log is empty (or refused): nothing to filter")
    target = record_ids(newest.body, "data")[0]
    ms_ok, ms_seen = _filters(ms_excluding, ms_including, target)
    iso_ok, iso_seen = _filters(iso_excluding, iso_including, target)
    seen = f"epoch milliseconds {ms_seen}; ISO date-times {iso_seen}"
    if ms_ok and iso_ok:
        return finding(Q_AUDIT_FORMAT, "audit_time_format", "both", seen)
    if ms_ok:
        return finding(Q_AUDIT_FORMAT, "audit_time_format", "ms", seen)
    if iso_ok:
        return finding(Q_AUDIT_FORMAT, "audit_time_format", "iso", seen)
    return cannot_tell(Q_AUDIT_FORMAT, seen)


def classify_audit_first_page(no_page: Answer, page0: Answer, page1: Answer, page2: Answer) -> Finding:
    """The same page size each time: no `page`, page=0, page=1, page=2."""
    if problem := refused(Q_AUDIT_PAGE, "/audit", "audit", no_page, page1):
        return problem
    first, one, two = (record_ids(a.body, "data") if a.ok else None for a in (no_page, page1, page2))
    zero = record_ids(page0.body, "data") if page0.ok else None
    if not first or one is None:
        return cannot_tell(Q_AUDIT_PAGE, "the audit log is empty (or refused): no pages to compare")
    seen = (
        "page=0 is refused"
        if page0.status == 400
        else f"page=0 {'equals' if zero == first else 'differs from'} the first page"
        if zero is not None
        else f"page=0 answered HTTP {page0.status}"
    )
    seen += f"; page=1 {'equals' if one == first else 'differs from'} the first page"
    if two is not None:
        seen += f"; page=2 {'differs from' if two != one else 'equals'} page=1"
    if one == first and two != one:
        return finding(Q_AUDIT_PAGE, "audit_first_page", "1", seen)
    if zero == first and one != first:
        return finding(Q_AUDIT_PAGE, "audit_first_page", "0", seen)
    return cannot_tell(Q_AUDIT_PAGE, seen)


def classify_analytics_empty(answer: Answer) -> Finding:
    """`answer`: a report for the two days after today, which cannot hold data."""
    if problem := refused(Q_ANALYTICS_EMPTY, "/analytics/reports", "account admin", answer):
        return problem
    if answer.status == 500:
        return finding(
            Q_ANALYTICS_EMPTY,
            "analytics_empty_range",
            "error_500",
            f"a range without data answers HTTP 500 ({answer.message or 'no message'})",
        )
    if answer.ok:
        rows = (answer.body or {}).get("data") if isinstance(answer.body, Mapping) else None
        if rows == [] or rows is None:
            return finding(
                Q_ANALYTICS_EMPTY,
                "analytics_empty_range",
                "empty_200",
                "a range without data answers HTTP 200 with no rows",
            )
        return cannot_tell(Q_ANALYTICS_EMPTY, f"a range after today answered {len(rows)} row(s)")
    return cannot_tell(
        Q_ANALYTICS_EMPTY,
        f"a range after today answered HTTP {answer.status} "
        f"({answer.message or 'no message'}), so emptiness could not be tested",
    )


def classify_build_rows(answer: Answer) -> Finding:
    """`answer`: buildAvgDuration by day over the 7 days up to the newest build."""
    if problem := refused(Q_BUILD_ROWS, "/analytics/reports/buildAvgDuration", "account admin", answer):
        return problem
    rows = (answer.body or {}).get("data") if answer.ok and isinstance(answer.body, Mapping) else None
    if not rows or not isinstance(rows, list):
        status = f"HTTP {answer.status}" + (f" ({answer.message})" if answer.message else "")
        return cannot_tell(Q_BUILD_ROWS, f"7 days by day answered {status} with no rows (no builds in that week?)")
    timed = [row for row in rows if isinstance(row, Mapping) and row.get("time")]
    seen = f"7 days by day answered {len(rows)} row(s), {len(timed)} with a `time`"
    if len(timed) == len(rows):
        return finding(Q_BUILD_ROWS, "analytics_build_rows", "bucketed", seen)
    if not timed and len(rows) == 1:
        return finding(Q_BUILD_ROWS, "analytics_build_rows", "aggregate", seen)
    return cannot_tell(Q_BUILD_ROWS, seen)


def classify_active_committers(days30: Answer, days120: Answer) -> Finding:
    """activeCommitters by month over the last 30 days, and over the last 120 days (within its documented 3 months to
    1 year): a 400 for 30 days is a rejected window only if the longer window is accepted."""
    if problem := refused(Q_COMMITTERS, "/analytics/reports/activeCommitters", "account admin", days30, days120):
        return problem
    said = lambda a: f"HTTP {a.status}" + (f" ({a.message})" if a.message else "")  # noqa: E731
    seen = f"30 days answer {said(days30)}; 120 days answer {said(days120)}"
    # A 500 means "no data for this range" (documented), not a rejected window.
    accepted = lambda a: a.ok or a.status == 500  # noqa: E731
    if days30.status == 400 and accepted(days120):
        return finding(Q_COMMITTERS, "active_committers_30_days", "rejects", seen)
    if accepted(days30):
        return finding(Q_COMMITTERS, "active_committers_30_days", "accepts", seen)
    return cannot_tell(Q_COMMITTERS, seen)


def classify_retry_after(rate_limited: Sequence[Optional[str]]) -> Finding:
    """The Retry-After header (or None) of every 429 the probe met."""
    if not rate_limited:
        return Finding(
            Q_RETRY_AFTER,
            "unknown",
            "no 429 was met (the probe never provokes one)",
            None,
            "waits what Retry-After asks, else backs off exponentially",
        )
    with_header = [value for value in rate_limited if value]
    seen = f"{len(rate_limited)} answer(s) were 429, {len(with_header)} with Retry-After"
    if with_header:
        return finding(Q_RETRY_AFTER, "retry_after", "with", seen + f" (e.g. {with_header[0]!r})")
    return finding(Q_RETRY_AFTER, "retry_after", "without", seen)


def classify_hermes(triggers: Answer, events: Answer, public_events: Answer) -> Finding:
    if problem := refused(Q_HERMES, "/hermes/triggers", "pipeline", triggers):
        return problem
    items = triggers.body if triggers.ok and isinstance(triggers.body, list) else None
    if items is None:
        return cannot_tell(Q_HERMES, f"/hermes/triggers answered HTTP {triggers.status} without a list")
    empty = sum(
        1
        for t in items
        if isinstance(t, Mapping) and isinstance(t.get("event-data"), Mapping) and not any(t["event-data"].values())
    )
    seen = f"{empty} of {len(items)} trigger(s) have an empty event-data"
    own = events.body if events.ok and isinstance(events.body, list) else None
    public = public_events.body if public_events.ok and isinstance(public_events.body, list) else None
    if own is not None and public is not None:
        seen += f"; /hermes/events lists {len(own)} event(s), with public=true {len(public)}"
    return Finding(
        Q_HERMES,
        "observed",
        seen,
        None,
        "keeps triggers with empty event-data (the schema allows them); lists /hermes/events without public=true",
    )


def classify_environments_id(answer: Answer) -> Finding:
    if problem := refused(Q_ENVIRONMENTS_ID, "/environments-v2", "environments-v2", answer):
        return problem
    items = (answer.body or {}).get("docs") if isinstance(answer.body, Mapping) else None
    if not answer.ok or not isinstance(items, list):
        return cannot_tell(Q_ENVIRONMENTS_ID, f"/environments-v2 answered HTTP {answer.status} without `docs`")
    items = [item for item in items if isinstance(item, Mapping)]
    if not items:
        return cannot_tell(Q_ENVIRONMENTS_ID, "the account has no environments")
    with_id = sum(1 for item in items if item.get("_id"))
    named = sum(1 for item in items if isinstance(item.get("metadata"), Mapping) and item["metadata"].get("name"))
    seen = f"{with_id} of {len(items)} environment(s) carry an _id, {named} a metadata.name"
    if named < len(items):
        return finding(Q_ENVIRONMENTS_ID, "environments_id", "no_name", seen)
    if with_id == len(items):
        return finding(Q_ENVIRONMENTS_ID, "environments_id", "present", seen)
    if with_id == 0:
        return finding(Q_ENVIRONMENTS_ID, "environments_id", "absent", seen)
    return Finding(Q_ENVIRONMENTS_ID, "mixed", seen, True, CONNECTOR["environments_id"]["present"][1])


def classify_annotations_none(answer: Answer) -> Finding:
    """`answer`: GET /annotations for a build id that cannot exist."""
    if problem := refused(Q_ANNOTATIONS, "/annotations", "pipeline", answer):
        return problem
    if answer.status == 404:
        return finding(Q_ANNOTATIONS, "annotations_none", "not_found_404", "a lookup matching nothing answers HTTP 404")
    if answer.ok and answer.body == []:
        return finding(Q_ANNOTATIONS, "annotations_none", "empty_200", "a lookup matching nothing answers HTTP 200 []")
    return cannot_tell(Q_ANNOTATIONS, f"a lookup matching nothing answered HTTP {answer.status}")


# ---------------------------------------------------------------------------------------------------------------------
# GitOps: pure functions of the GraphQL answers
# ---------------------------------------------------------------------------------------------------------------------
def graphql_errors(answer: Answer) -> List[str]:
    """The messages of an answer's `errors` (each cut at 300 characters)."""
    errors = answer.body.get("errors") if isinstance(answer.body, Mapping) else None
    return [str(e.get("message", ""))[:300] for e in errors or [] if isinstance(e, Mapping)]


NAME = r"""["']([A-Za-z_0-9.]+)["']"""  # a name as engines quote it: graphql-js with ", graphql-core with '


def missing_fields(messages: Sequence[str]) -> List[str]:
    """The root fields the server says it lacks (`Cannot query field "x" on type "Query".`)."""
    found = (re.match(f"Cannot query field {NAME} on type {NAME}", m) for m in messages)
    return [m.group(1) for m in found if m and m.group(2) == "Query"]


def without_pagination(messages: Sequence[str], field: str) -> bool:
    """Whether the server says `field` takes no `pagination`: `Unknown argument "pagination" on field "Query.x".`
    (graphql-js 16) or `... on field "x" of type "Query".` (graphql-js 15)."""
    found = (re.match(f"Unknown argument {NAME} on field {NAME}", m) for m in messages)
    return any(m.group(1) == "pagination" and m.group(2) in (field, f"Query.{field}") for m in found if m)


def suggestions(messages: Sequence[str]) -> List[str]:
    """The field names the server suggests (`Did you mean "x"?`): names of its schema, never account data."""
    return sorted(
        {name for m in messages if "Did you mean" in m for name in re.findall(NAME, m.split("Did you mean")[1])}
    )


def gitops_refused(answer: Answer) -> Optional[str]:
    """Why a GraphQL answer says nothing about the schema (no answer, a refused key, Forbidden), else None."""
    if answer.status is None:
        return f"no answer from {GRAPHQL_PATH} ({answer.problem})"
    if answer.status in (401, 403, 404, 429) or answer.status >= 500:
        said = answer.message or "; ".join(graphql_errors(answer))
        return f"{GRAPHQL_PATH} answered HTTP {answer.status}" + (f" ({said[:200]})" if said else "")
    if "Forbidden" in graphql_errors(answer):
        return f"{GRAPHQL_PATH} answered Forbidden: the key may not read GitOps data"
    return None


def classify_gitops_fields(answer: Answer) -> List[Finding]:
    """The answer to one document that asks every list query of SAFE_QUERY_FIELDS with `pagination: {first: 1}` (but
    productReleases, whose arguments are evidenced) and SENTINEL: which fields exist, whether the SDK's whole lists
    take `pagination`, and the status of a refused query (the sentinel makes validation refuse the document, so
    nothing of it is executed)."""
    questions = (Q_GITOPS_QUERIES, Q_GITOPS_STATUS, Q_GITOPS_LIST_PAGINATION)
    problem = gitops_refused(answer)
    messages = graphql_errors(answer)
    missing = set(missing_fields(messages))
    if problem is None and SENTINEL not in missing:
        problem = f"{GRAPHQL_PATH} answered HTTP {answer.status} without refusing a field no schema has"
    if problem:
        return [cannot_tell(question, problem) for question in questions]
    asked = EVIDENCED_LISTS + ("promotions", "productReleases") + UNEVIDENCED_LISTS
    present = [f for f in asked if f not in missing]
    hints = suggestions(messages)
    required = [m for m in messages if "required" in m]
    seen = (
        f"present: {', '.join(present) or 'none'}; absent: {', '.join(f for f in asked if f in missing) or 'none'}"
        + (f"; the server suggests: {', '.join(hints)}" if hints else "")
        + (f"; {' / '.join(required)}" if required else "")
    )
    if "promotions" in present:
        queries = finding(Q_GITOPS_QUERIES, "gitops_schema", "current", seen)
    elif "productReleases" in present:
        queries = finding(Q_GITOPS_QUERIES, "gitops_schema", "before_promotions", seen)
    else:
        queries = cannot_tell(Q_GITOPS_QUERIES, seen)
    status = str(answer.status)
    said = f"a query with a field no schema has answered HTTP {status}"
    if status in CONNECTOR["gitops_invalid_query_status"]:
        refusal = finding(Q_GITOPS_STATUS, "gitops_invalid_query_status", status, said)
    else:
        refusal = cannot_tell(Q_GITOPS_STATUS, said)
    lists = [f for f in UNPAGED_LISTS if f in present]
    no_paging = [f for f in lists if without_pagination(messages, f)]
    paging_seen = (
        f"`pagination` refused by: {', '.join(no_paging) or 'none'}; "
        f"taken by: {', '.join(f for f in lists if f not in no_paging) or 'none'}"
    )
    if not lists:
        paging = cannot_tell(Q_GITOPS_LIST_PAGINATION, "none of those lists is there")
    else:
        reading = "evidenced_only" if len(no_paging) == len(lists) else "mixed" if no_paging else "every_list"
        paging = finding(Q_GITOPS_LIST_PAGINATION, "gitops_list_pagination", reading, paging_seen)
    return [queries, refusal, paging]


def classify_gitops_releases(answer: Answer) -> Finding:
    """`runtimes` and `gitopsReleases(pagination: {first: 1})` without filters, in one query."""
    if problem := gitops_refused(answer):
        return cannot_tell(Q_GITOPS_RELEASES, problem)
    got = answer.body.get("data") if isinstance(answer.body, Mapping) else None
    got = got if isinstance(got, Mapping) else {}
    runtimes = (got.get("runtimes") or {}).get("edges")
    account = f"the account has {len(runtimes)} GitOps runtime(s); " if isinstance(runtimes, list) else ""
    releases = got.get("gitopsReleases")
    if isinstance(releases, Mapping):
        n = len(releases.get("edges") or [])
        return finding(
            Q_GITOPS_RELEASES,
            "gitops_releases_filter",
            "optional",
            account + f"without a filter it answered {n} release(s)",
        )
    errors = [m for m in graphql_errors(answer) if m]
    if answer.status == 200 and errors:
        return finding(
            Q_GITOPS_RELEASES, "gitops_releases_filter", "required", account + f"without a filter: {errors[0]}"
        )
    return cannot_tell(Q_GITOPS_RELEASES, account + f"{GRAPHQL_PATH} answered HTTP {answer.status}")


def classify_gitops_page_cap(field: str, page_51: Answer, page_50: Optional[Answer]) -> Finding:
    """`field(pagination: {first: 51})`, then (only if that was refused) `first: 50`."""
    if problem := gitops_refused(page_51) or (page_50 and gitops_refused(page_50)):
        return cannot_tell(Q_GITOPS_PAGE_CAP, problem)
    got = page_51.body.get("data") if isinstance(page_51.body, Mapping) else None
    page = got.get(field) if isinstance(got, Mapping) else None
    if page_51.status == 200 and isinstance(page, Mapping):
        n = len(page.get("edges") or [])
        more = bool((page.get("pageInfo") or {}).get("hasNextPage"))
        seen = f"{field} with first: 51 answered {n} node(s)" + (" and more pages" if more else "")
        return finding(Q_GITOPS_PAGE_CAP, "gitops_page_cap", "clamp_50" if n == 50 and more else "none", seen)
    refusal = "; ".join(graphql_errors(page_51)) or f"HTTP {page_51.status}"
    seen = f"{field} with first: 51 was refused ({refusal})"
    if page_50 is None:
        return cannot_tell(Q_GITOPS_PAGE_CAP, seen)
    got50 = page_50.body.get("data") if isinstance(page_50.body, Mapping) else None
    if page_50.status == 200 and isinstance(got50, Mapping) and isinstance(got50.get(field), Mapping):
        return finding(Q_GITOPS_PAGE_CAP, "gitops_page_cap", "50", seen + "; first: 50 was answered")
    if graphql_errors(page_50) == graphql_errors(page_51):  # refused whatever the size: for another reason
        return cannot_tell(Q_GITOPS_PAGE_CAP, seen + "; first: 50 too, with the same error")
    refusal = "; ".join(graphql_errors(page_50)) or f"HTTP {page_50.status}"
    return finding(Q_GITOPS_PAGE_CAP, "gitops_page_cap", "below_50", seen + f"; first: 50 too ({refusal})")


def classify_gitops_introspection(answer: Answer) -> Finding:
    """`{ __schema { queryType { name } } }`."""
    if problem := gitops_refused(answer):
        return cannot_tell(Q_GITOPS_INTROSPECTION, problem)
    got = answer.body.get("data") if isinstance(answer.body, Mapping) else None
    if isinstance(got, Mapping) and isinstance(got.get("__schema"), Mapping):
        return finding(Q_GITOPS_INTROSPECTION, "gitops_introspection", "enabled", "introspection was answered")
    errors = graphql_errors(answer)
    if errors:
        return finding(Q_GITOPS_INTROSPECTION, "gitops_introspection", "disabled", f"refused: {errors[0]}")
    return cannot_tell(Q_GITOPS_INTROSPECTION, f"{GRAPHQL_PATH} answered HTTP {answer.status} without data or errors")


# ---------------------------------------------------------------------------------------------------------------------
# the network: GETs to SAFE_READS, GraphQL queries of SAFE_QUERY_FIELDS, never following redirects, the key only in the
# Authorization header
# ---------------------------------------------------------------------------------------------------------------------
class UnsafeRequest(ValueError):
    pass


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: Optional[requests.Session] = None,
        budget_seconds: float = TIME_BUDGET_SECONDS,
        pause_seconds: float = PAUSE_SECONDS,
        graphql_url: Optional[str] = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.graphql_url = graphql_url or graphql_url_of(self.base_url)
        self._key = api_key
        self._session = session or requests.Session()
        self._deadline = time.monotonic() + budget_seconds
        self._pause = pause_seconds
        self.sent: List[str] = []  # "GET /path?query" of every request, for the summary
        self.rate_limited: List[Optional[str]] = []  # Retry-After of every 429 met (None: no header)

    @staticmethod
    def new_session() -> str:
        """A pagination session of the probe's own, never the key's shared cursor."""
        return f"source-codefresh-probe-{uuid.uuid4()}"

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None, session: Optional[str] = None) -> Answer:
        if not any(pattern.match(path) for pattern in SAFE_READS):
            raise UnsafeRequest(f"{path} is not on the probe's list of safe reads")
        headers = {"Authorization": self._key, "Accept": "application/json"}
        if session:
            headers["X-Pagination-Session-Id"] = session
        request = requests.Request("GET", self.base_url + path, params=params or {}, headers=headers).prepare()
        return self._send(request, f"GET {path}" + (f"?{request.url.split('?', 1)[1]}" if "?" in request.url else ""))

    def query(self, name: str, fields: Sequence[Tuple[str, str, str]]) -> Answer:
        """`query <name> { <field>(<arguments>) { <selection> } ... }` to the GraphQL API: each field is (name,
        arguments, selection), its name on SAFE_QUERY_FIELDS; an operation of this method is always a query."""
        unsafe = [field for field, _, _ in fields if field not in SAFE_QUERY_FIELDS]
        if unsafe or not re.fullmatch(r"SourceCodefreshProbe[A-Za-z]+", name):
            raise UnsafeRequest(f"{', '.join(unsafe) or name} is not on the probe's list of safe GraphQL queries")
        body = " ".join(f"{field}{f'({args})' if args else ''} {{ {selection} }}" for field, args, selection in fields)
        document = f"query {name} {{ {body} }}"
        headers = {"Authorization": self._key, "Accept": "application/json", "Content-Type": "application/json"}
        payload = json.dumps({"query": document, "variables": {}})
        request = requests.Request("POST", self.graphql_url, data=payload, headers=headers).prepare()
        return self._send(request, f"POST {GRAPHQL_PATH} {document}")

    def _send(self, request: requests.PreparedRequest, line: str) -> Answer:
        if self.rate_limited:
            return Answer(None, problem="not sent: Codefresh answered 429 earlier, the probe stops to spare the key")
        if time.monotonic() > self._deadline:
            return Answer(None, problem="not sent: the probe's time budget is spent")
        if self.sent:
            time.sleep(self._pause)
        self.sent.append(line)
        try:
            response = self._session.send(request, timeout=REQUEST_TIMEOUT_SECONDS, allow_redirects=False)
        except requests.RequestException as exc:
            return Answer(None, problem=type(exc).__name__)
        if response.status_code == 429:
            self.rate_limited.append(response.headers.get("Retry-After"))
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, body, dict(response.headers))


def graphql_url_of(base_url: str) -> str:
    """The GitOps GraphQL API next to the REST API, as the connector derives it: `https://<host>/api` ->
    `https://<host>/2.0/api/graphql`."""
    return graphql_url({"base_url": base_url})


def check_base_url(base_url: str, flag: str = "--base-url") -> Optional[str]:
    """One sentence if the key must not be sent to this URL, else None."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{flag} '{base_url}' is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}."
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        return (
            f"{flag} '{base_url}' uses plain http, which would send the API key unencrypted; "
            f"use https:// (plain http is accepted only for localhost)."
        )
    return None


# ---------------------------------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------------------------------
IMAGES_PAGE = 5


def probe(client: Client, today: Optional[datetime] = None) -> List[Finding]:
    today = today or datetime.now(timezone.utc)
    findings: List[Finding] = []

    # 1. images: page 1, page 2 in the same session, and offset = one page in a session of its own
    session = client.new_session()
    first = client.get("/images", {"limit": IMAGES_PAGE, "page": 1}, session)
    by_page = client.get("/images", {"limit": IMAGES_PAGE, "page": 2}, session)
    by_offset = client.get("/images", {"limit": IMAGES_PAGE, "offset": IMAGES_PAGE}, client.new_session())
    findings.append(classify_images(first, by_page, by_offset, IMAGES_PAGE))

    # 2. builds: the newest build, then three windows around its creation time
    newest = client.get("/workflow", {"limit": 1, "page": 1}, client.new_session())
    docs = ((newest.body or {}).get("workflows") or {}).get("docs") if isinstance(newest.body, Mapping) else None
    last_build_day = today
    if newest.ok and docs and isinstance(docs[0], Mapping) and docs[0].get("created"):
        last_build_day = parse_time(docs[0]["created"])
        windows = workflow_windows(docs[0]["created"])
        listed = {
            name: client.get(
                "/workflow", {"limit": 20, "page": 1, "startDate": start, "endDate": end}, client.new_session()
            )
            for name, (start, end) in windows.items()
        }
        findings.append(classify_workflow_dates(newest, listed["exact"], listed["after"], listed["dates"]))
    else:
        findings.append(classify_workflow_dates(newest, newest, newest, newest))

    # 3. audit: the newest entry, windows around it in both formats, then the first pages
    audit_first = client.get("/audit", {"pageSize": IMAGES_PAGE})
    entries = (audit_first.body or {}).get("data") if isinstance(audit_first.body, Mapping) else None
    if audit_first.ok and entries and isinstance(entries[0], Mapping) and entries[0].get("createdAt"):
        windows = audit_windows(entries[0]["createdAt"])
        # Each window's first page without `page`: whichever number it has (page=1 is the second page if from 0).
        filtered = {
            name: client.get("/audit", {"pageSize": IMAGES_PAGE, "from": start, "to": end})
            for name, (start, end) in windows.items()
        }
        findings.append(classify_audit_format(audit_first, **filtered))
        pages = [client.get("/audit", {"page": page, "pageSize": IMAGES_PAGE}) for page in (0, 1, 2)]
        findings.append(classify_audit_first_page(audit_first, *pages))
    else:
        findings.append(classify_audit_format(audit_first, audit_first, audit_first, audit_first, audit_first))
        findings.append(classify_audit_first_page(audit_first, audit_first, audit_first, audit_first))

    # 4. analytics: a range after today (no data can exist), and activeCommitters over 30 and 120 days
    day = lambda d: d.strftime("%Y-%m-%d")  # noqa: E731
    tomorrow = today + timedelta(days=1)
    empty = client.get(
        "/analytics/reports/buildAvgDuration",
        {"dateRange": [day(tomorrow), day(tomorrow + timedelta(days=1))], "granularity": "day"},
    )
    findings.append(classify_analytics_empty(empty))
    # The week up to the newest build, so that the answer has rows to look at.
    week = client.get(
        "/analytics/reports/buildAvgDuration",
        {"dateRange": [day(last_build_day - timedelta(days=6)), day(last_build_day)], "granularity": "day"},
    )
    findings.append(classify_build_rows(week))
    committers = [
        client.get(
            "/analytics/reports/activeCommitters",
            {"dateRange": [day(today - timedelta(days=span - 1)), day(today)], "granularity": "month"},
        )
        for span in (30, 120)
    ]
    findings.append(classify_active_committers(*committers))

    # 6. hermes
    findings.append(
        classify_hermes(
            client.get("/hermes/triggers"),
            client.get("/hermes/events"),
            client.get("/hermes/events", {"public": "true"}),
        )
    )

    # 7. environments and the annotation lookup of pipeline_runs (a build id no account has: 24 zeros)
    findings.append(classify_environments_id(client.get("/environments-v2")))
    nobody = {"entityType": "build", "entityId": "0" * 24, "key": "source-codefresh-probe"}
    findings.append(classify_annotations_none(client.get("/annotations", nobody)))

    # 8. GitOps: five GraphQL queries at most
    findings += probe_gitops(client)

    # 5. 429s, last: whatever the other questions met
    findings.append(classify_retry_after(client.rate_limited))
    return findings


def probe_gitops(client: Client) -> List[Finding]:
    # Every list query, and the sentinel: refused by validation, so nothing runs; the errors name what is missing.
    fields = [
        (name, "" if name == "productReleases" else "pagination: {first: 1}", "__typename")
        for name in EVIDENCED_LISTS + ("promotions", "productReleases") + UNEVIDENCED_LISTS
    ]
    schema = client.query("SourceCodefreshProbeFields", fields + [(SENTINEL, "", "__typename")])
    found = classify_gitops_fields(schema)
    missing = set(missing_fields(graphql_errors(schema)))
    releases = client.query(
        "SourceCodefreshProbeReleases",
        [
            ("runtimes", "", "edges { __typename }"),
            ("gitopsReleases", "pagination: {first: 1}", "edges { __typename }"),
        ],
    )
    found.append(classify_gitops_releases(releases))
    # The largest page: where the CLI says "limited to 50" (promotions), else a list that answered without arguments.
    if "promotions" not in missing:
        field = "promotions"
    else:
        field = "gitopsReleases" if found[-1].reading == "optional" else "clusters"
    page = "edges { __typename } pageInfo { hasNextPage }"
    page_51 = client.query("SourceCodefreshProbePageSize", [(field, "pagination: {first: 51}", page)])
    page_50 = None
    if graphql_errors(page_51) and not gitops_refused(page_51):
        page_50 = client.query("SourceCodefreshProbePageSize", [(field, "pagination: {first: 50}", page)])
    found.append(classify_gitops_page_cap(field, page_51, page_50))
    introspection = client.query("SourceCodefreshProbeIntrospection", [("__schema", "", "queryType { name }")])
    found.append(classify_gitops_introspection(introspection))
    return found


def report(findings: Sequence[Finding], client: Client, elapsed: float) -> str:
    verdict = {True: "fits", False: "DOES NOT FIT", None: "could not tell"}
    noted = lambda f: f.reading == "observed" or (f.fits is None and f.reading != "unknown")  # noqa: E731
    lines = [
        f"Codefresh API probe of {client.base_url}: {len(client.sent)} requests in {elapsed:.1f} s "
        f"(read-only; no key, id, name or record in this output, only the date-times asked about)",
        "",
    ]
    for number, item in enumerate(findings, start=1):
        lines += [
            f"{number}. {item.question}",
            f"   seen:      {item.seen}",
            f"   reading:   {item.reading}",
            f"   connector: {item.connector} -> {'noted' if noted(item) else verdict[item.fits]}",
            "",
        ]
    misfits = [f for f in findings if f.fits is False]
    lines.append(
        f"{len(misfits)} of {len(findings)} answers do not fit the connector."
        if misfits
        else "Every answer the probe could get fits the connector."
    )
    lines.append(
        f"Please report this output at {ISSUE_TRACKER}, naming the connector version; it helps whichever "
        f"way it came out."
    )
    lines += ["", "Requests sent:"] + [f"  {line}" for line in client.sent]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-key", help="a Codefresh API key (default: $CODEFRESH_API_KEY)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"the API root (default {DEFAULT_BASE_URL})")
    parser.add_argument(
        "--graphql-url", help=f"the GitOps GraphQL API (default: {GRAPHQL_PATH} on the host of --base-url)"
    )
    args = parser.parse_args(argv)
    key = (args.api_key or os.environ.get("CODEFRESH_API_KEY") or "").strip()
    if not key:
        print("Give the API key with --api-key KEY or in the CODEFRESH_API_KEY environment variable.", file=sys.stderr)
        return 2
    hide_key_in_tracebacks(key)
    problem = check_base_url(args.base_url) or (args.graphql_url and check_base_url(args.graphql_url, "--graphql-url"))
    if problem:
        print(problem, file=sys.stderr)
        return 2
    client = Client(args.base_url, key, graphql_url=args.graphql_url)
    started = time.monotonic()
    user = client.get("/user")
    where = f"{client.base_url}/user"
    stop = {
        401: f"Codefresh rejected the API key (HTTP 401) at {where}; check the key and --base-url.",
        403: f"Codefresh answered 403 Forbidden at {where}, which any valid key may read: it may have restricted the "
        "key for unusual activity; wait, or create a new key, and run the probe again.",
        None: f"No answer from {where} ({user.problem}); check --base-url and the network.",
    }
    if user.status in stop:
        print(stop[user.status], file=sys.stderr)
        return 1
    findings = probe(client)
    print(report(findings, client, time.monotonic() - started).replace(key, "<api key>"))
    return 0


def hide_key_in_tracebacks(key: str) -> None:
    """An unexpected error prints its traceback with every occurrence of the key replaced."""
    import traceback

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(text.replace(key, "<api key>"))

    sys.excepthook = excepthook


if __name__ == "__main__":
    sys.exit(main())
