"""The audit log (source_codefresh/audit.py) under every reading of its time bounds, and below its entry cap.

Each test runs a sync against a mocked /audit that reads `from`/`to` one way (unit_tests/audit_server.py): epoch
milliseconds or ISO date-times, a bound in the other form ignored or answered 400, a listing capped."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from airbyte_cdk.models import SyncMode

from source_codefresh import audit
from unit_tests import builders as b
from unit_tests.audit_server import AuditLog
from unit_tests.conftest import log_lines, records_of, run_read, sent_requests

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

START = b.midnight_days_ago(400)  # three windows of 180 days


def _entries(count: int, days: float = 399.0):
    """`count` entries spread over the last `days` days (unique createdAt, ids 1_000_001...)."""
    now = b.midnight_days_ago(0)
    return [b.audit_entry(i, b.iso(now - timedelta(days=days * (i + 1) / (count + 1)))) for i in range(count)]


def _pages(mocker):
    return [r["params"] for r in sent_requests(mocker, "audit") if r["params"].get("pageSize") != ["1"]]


def _sync(**config):
    return run_read("audit_logs", sync_mode=SyncMode.incremental, start_date=b.iso(START), **config)


@pytest.mark.parametrize(
    "reads, wrong_form",
    [("ms", "ignore"), ("ms", "400"), ("iso", "ignore"), ("iso", "400")],
    ids=["ms, ISO ignored", "ms, ISO rejected", "ISO, ms ignored", "ISO, ms rejected"],
)
def test_every_entry_once_whichever_form_codefresh_reads(http_mocker, reads, wrong_form):
    entries = _entries(60)
    AuditLog(entries, reads=reads, wrong_form=wrong_form).install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert not output.errors
    pages = _pages(http_mocker)
    assert len(pages) == 3  # one page per 180-day window: the bounds filtered
    first_from = pages[0]["from"][0]
    assert first_from.isdigit() == (reads == "ms"), first_from
    said = [line for line in log_lines(output) if "filters the audit log by" in line]
    assert len(said) == 1 and ("milliseconds" if reads == "ms" else "ISO") in said[0]


def test_the_form_is_asked_once_per_sync_not_per_window(http_mocker):
    AuditLog(_entries(30), reads="iso").install(http_mocker)

    _sync()

    questions = [
        r
        for r in sent_requests(http_mocker, "audit")
        if r["params"].get("page") == ["1"] and r["params"].get("pageSize") == ["1"]
    ]
    # ms: `to` 2000 ignored (entries) -> iso: `to` 2000 empty, `from` 2000 not.
    assert len(questions) == 3


def test_without_a_working_filter_each_window_keeps_its_own_entries_and_says_so(http_mocker):
    entries = _entries(40)
    log = AuditLog(entries, reads="neither")  # every bound ignored
    log.install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert any("filters by neither" in line for line in log_lines(output))


def test_an_empty_log_is_read_without_a_warning(http_mocker):
    AuditLog([]).install(http_mocker)

    output = _sync()

    assert not records_of(output) and not output.errors
    assert not [line for line in log_lines(output) if "WARN" in line or "neither" in line]


@pytest.fixture
def small_cap(mocker):
    """The documented cap is 50,000; these tests use 50 on both sides, so that a few entries reach it."""
    original = audit.AuditLogRetriever.__post_init__

    def with_small_cap(self, parameters):
        original(self, parameters)
        self._cap = 50

    mocker.patch.object(audit.AuditLogRetriever, "__post_init__", with_small_cap)
    return 50


def test_a_window_at_the_cap_is_split_until_nothing_is_left_out(http_mocker, small_cap):
    # 170 entries in the last three days: every 180-day window holding them lists at most 50.
    entries = _entries(170, days=2.5)
    AuditLog(entries, cap=small_cap).install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert any("reading it in two halves" in line for line in log_lines(output))
    # Every listing that was read held fewer entries than the cap (none was cut).
    assert all(int(p["page"][0]) == 1 for p in _pages(http_mocker))
    cap_questions = [r for r in sent_requests(http_mocker, "audit") if r["params"].get("page") == [str(small_cap)]]
    assert cap_questions and all(q["params"]["pageSize"] == ["1"] for q in cap_questions)


def test_a_minute_still_at_the_cap_is_read_with_a_warning(http_mocker, small_cap):
    now = b.midnight_days_ago(0)
    burst = [b.audit_entry(i, b.iso(now - timedelta(hours=2, milliseconds=i))) for i in range(60)]
    AuditLog(burst, cap=small_cap).install(http_mocker)

    output = _sync()

    assert len(records_of(output)) == small_cap
    assert any("too many to split further" in line for line in log_lines(output))
