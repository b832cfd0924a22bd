"""The audit log (source_codefresh/audit.py) under every reading of its time bounds and page numbers, and below its
entry cap.

Each test runs a sync against a mocked /audit that reads `from`/`to` one way (unit_tests/audit_server.py): epoch
milliseconds or ISO date-times, a bound in the other form ignored or answered 400, a listing capped, pages numbered
from 1 (page 0 refused, read as 1, empty or a 500) or from 0."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from airbyte_cdk.models import SyncMode

from source_codefresh import audit
from unit_tests import builders as b
from unit_tests.audit_server import AuditLog
from unit_tests.conftest import log_lines, records_of, run_read, sent_requests
from unit_tests.stream_cases import stream_failure

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

START = b.midnight_days_ago(400)  # three windows of 180 days


def _entries(count: int, days: float = 399.0):
    """`count` entries spread over the last `days` days (unique createdAt, ids 1_000_001...)."""
    now = b.midnight_days_ago(0)
    return [b.audit_entry(i, b.iso(now - timedelta(days=days * (i + 1) / (count + 1)))) for i in range(count)]


def _pages(mocker):
    return [r["params"] for r in sent_requests(mocker, "audit") if r["params"].get("pageSize") != ["1"]]


def _sync(expect_failure=False, **config):
    return run_read(
        "audit", sync_mode=SyncMode.incremental, start_date=b.iso(START), expect_failure=expect_failure, **config
    )


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
        r for r in sent_requests(http_mocker, "audit") if "page" not in r["params"] and r["params"]["pageSize"] == ["1"]
    ]
    # ms: `to` 2000 ignored (entries) -> iso: `to` 2000 empty, `from` 2000 not; each the first page, without `page`.
    assert len(questions) == 3


def test_without_a_working_filter_each_window_keeps_its_own_entries_and_says_so(http_mocker):
    entries = _entries(40)
    log = AuditLog(entries, reads="neither")  # every bound ignored
    log.install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert any("filters by neither" in line for line in log_lines(output))


# How a server numbered from 1 might answer page 0 (the connector never sends it), and a server numbered from 0.
NUMBERINGS = [
    pytest.param(1, "400", id="from 1, page 0 refused"),
    pytest.param(1, "first", id="from 1, page 0 read as 1"),
    pytest.param(1, "empty", id="from 1, page 0 empty"),
    pytest.param(1, "500", id="from 1, page 0 a server error"),
    pytest.param(0, None, id="from 0"),
]


def _listings(mocker):
    """The page of each listing request (None: without `page`), window by window from the oldest (the windows are
    read concurrently, so their requests interleave; each window's own pages come in order)."""
    by_window = {}
    for params in _pages(mocker):
        by_window.setdefault(params["from"][0], []).append((params.get("page") or [None])[0])
    return [by_window[start] for start in sorted(by_window)]  # epoch ms (13 digits) or ISO: both sort as text


@pytest.mark.parametrize("reads", ["ms", "iso"])
@pytest.mark.parametrize("first_page, page_zero", NUMBERINGS)
def test_every_entry_once_whichever_number_the_first_page_has(http_mocker, first_page, page_zero, reads):
    entries = _entries(330)  # about 150 in each 180-day window (two pages of 100), 33 in the last 40 days (one)
    AuditLog(entries, reads=reads, first_page=first_page, page_zero=page_zero).install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert not output.errors
    sent = [r["params"].get("page", [None])[0] for r in sent_requests(http_mocker, "audit")]
    assert "0" not in sent, "page 0 is never asked for"
    # Each window: its first page without `page`, then page 1: the second page when numbered from 0; when numbered
    # from 1 a repeat of the first (one extra request per window of more than one page), then page 2. A window of one
    # page asks nothing more.
    pages = [None, "1"] if first_page == 0 else [None, "1", "2"]
    assert _listings(http_mocker) == [pages, pages, [None]]
    said = [line for line in log_lines(output) if line.startswith("Stream 'audit'") or "WARN" in line]
    assert len(said) == 1 and "filters the audit log by" in said[0], said


@pytest.mark.parametrize("first_page", [1, 0])
def test_a_window_of_exactly_one_full_page_is_read_once(http_mocker, first_page):
    now = b.midnight_days_ago(0)
    entries = [b.audit_entry(i, b.iso(now - timedelta(hours=1, seconds=i))) for i in range(100)]
    AuditLog(entries, first_page=first_page).install(http_mocker)

    output = _sync()

    assert sorted(r["id"] for r in records_of(output)) == sorted(e["id"] for e in entries)
    # The full first page asks for page 1: empty when numbered from 0, a repeat and then an empty page 2 from 1.
    assert _listings(http_mocker)[-1] == ([None, "1"] if first_page == 0 else [None, "1", "2"])


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


@pytest.mark.parametrize("first_page", [1, 0])
def test_a_window_at_the_cap_is_split_until_nothing_is_left_out(http_mocker, small_cap, first_page):
    # 170 entries in the last three days: every 180-day window holding them lists at most 50.
    entries = _entries(170, days=2.5)
    AuditLog(entries, cap=small_cap, first_page=first_page).install(http_mocker)

    output = _sync()

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids) == {e["id"] for e in entries} and set(ids.values()) == {1}
    assert any("reading it in two halves" in line for line in log_lines(output))
    # Every listing that was read held fewer entries than the cap (none was cut): one page each, without `page`.
    assert all("page" not in p for p in _pages(http_mocker))
    # The cap question: page cap - 1 of single entries (the cap-th entry numbered from 0, the one before from 1).
    cap_questions = [r for r in sent_requests(http_mocker, "audit") if "page" in r["params"]]
    assert cap_questions and all(q["params"]["page"] == [str(small_cap - 1)] for q in cap_questions)
    assert all(q["params"]["pageSize"] == ["1"] for q in cap_questions)


@pytest.mark.parametrize("first_page", [1, 0])
def test_a_minute_still_at_the_cap_is_read_with_a_warning(http_mocker, small_cap, first_page):
    now = b.midnight_days_ago(0)
    burst = [b.audit_entry(i, b.iso(now - timedelta(hours=2, milliseconds=i))) for i in range(60)]
    AuditLog(burst, cap=small_cap, first_page=first_page).install(http_mocker)

    output = _sync()

    assert len(records_of(output)) == small_cap
    assert any("too many to split further" in line for line in log_lines(output))


@pytest.mark.parametrize("reads", ["ms", "neither"])
def test_a_server_that_ignores_the_page_fails_the_stream_instead_of_reading_for_ever(http_mocker, reads):
    AuditLog(_entries(250), reads=reads, ignores_page=True).install(http_mocker)

    output = _sync(expect_failure=True)

    ids = Counter(r["id"] for r in records_of(output))
    assert set(ids.values()) <= {1}  # nothing emitted twice
    assert "ignores the `page` parameter" in stream_failure(output, "audit").message
    # The cap question of the first window with entries finds `page` ignored: no listing page is read at all.
    assert len(_pages(http_mocker)) == 0
