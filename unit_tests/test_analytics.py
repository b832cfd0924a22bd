"""Analytics report rows (source_codefresh/analytics.py): the windows each report's metadata allows, rows never
emitted twice, and a window without data skipped at once (documented 500 "Could not get analytics report")."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import List

import pytest
from airbyte_cdk.models import FailureType

from source_codefresh.analytics import (
    FALLBACK_BOUNDS,
    Interval,
    bounds_for,
    bucket_start,
    fits_maximum,
    fits_minimum,
    next_bucket,
    parse_interval,
    report_windows,
)
from unit_tests import builders as b
from unit_tests.conftest import error, log_lines, records_of, request, response, run_read, sent_requests
from unit_tests.stream_cases import report_rows_request, stream_failure

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

# --- the intervals of the metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (45, Interval(days=45)),
        ("45", Interval(days=45)),
        ("45 days", Interval(days=45)),
        ("1 day", Interval(days=1)),
        ("2 weeks", Interval(days=14)),
        ("3 months", Interval(months=3)),
        ("3 mons", Interval(months=3)),
        ("1 year", Interval(months=12)),
        ("1 year 2 mons 3 days", Interval(months=14, days=3)),
        ("P45D", Interval(days=45)),
        ("P3M", Interval(months=3)),
        ("P1Y", Interval(months=12)),
        ("P2W", Interval(days=14)),
        (45 * 86_400, Interval(days=45)),  # seconds
        (str(45 * 86_400_000), Interval(days=45)),  # milliseconds, as a string
    ],
)
def test_an_interval_is_read_in_every_form_the_metadata_may_use(value, expected):
    assert parse_interval(value) == expected


@pytest.mark.parametrize("value", [None, "", True, "soon", "-3 days", "3 fortnights", "P", 10_000])
def test_an_unreadable_interval_is_none(value):
    assert parse_interval(value) is None


def test_calendar_months_are_clamped_to_the_month_end():
    assert Interval(months=1).after(date(2026, 1, 31)) == date(2026, 2, 28)
    assert Interval(months=12).after(date(2024, 2, 29)) == date(2025, 2, 28)
    assert Interval(months=-1).after(date(2026, 3, 31)) == date(2026, 2, 28)


def test_bounds_come_from_the_metadata_entry_of_the_granularity():
    dims = b.analytics_report("activeCommitters")["supportedTimeDimensions"]
    assert bounds_for(dims, "month") == ((Interval(months=3), Interval(months=12)), "")
    assert bounds_for(dims, "day") == (None, "")  # not supported: the report is skipped
    unreadable = [{"granularity": "day", "minDateRangeInterval": "a while", "maxDateRangeInterval": "45 days"}]
    (low, high), note = bounds_for(unreadable, "day")
    assert (low, high) == (FALLBACK_BOUNDS["day"][0], Interval(days=45)) and "a while" in note
    assert bounds_for(None, "week") == (FALLBACK_BOUNDS["week"], "its metadata lists no time dimensions")


# --- the windows ----------------------------------------------------------------------------------------------------


def _days(windows) -> List[tuple]:
    return [(w.first.isoformat(), w.last.isoformat(), w.emit_from.isoformat()) for w in windows]


def test_daily_credit_windows_are_45_days_and_a_one_day_tail_is_extended_backwards():
    # Documented: creditConsumption at day granularity takes 2 to 45 days.
    windows = report_windows(date(2026, 9, 1), date(2026, 11, 30), "day", Interval(days=2), Interval(days=45))
    assert _days(windows) == [
        ("2026-09-01", "2026-10-15", "2026-09-01"),
        ("2026-10-16", "2026-11-29", "2026-10-16"),
        # One day left: sent as three days (last minus first = 2 days), its first two days not emitted again.
        ("2026-11-28", "2026-11-30", "2026-11-30"),
    ]


def test_active_committers_get_whole_months_at_most_a_year_and_at_least_three_months():
    # Documented: activeCommitters, month granularity, 3 months to 1 year.
    windows = report_windows(date(2025, 11, 1), date(2026, 11, 30), "month", Interval(months=3), Interval(months=12))
    assert _days(windows) == [
        ("2025-11-01", "2026-10-31", "2025-11-01"),
        ("2026-08-01", "2026-11-30", "2026-11-01"),
    ]


def test_a_start_inside_a_bucket_reads_the_whole_bucket_unless_that_is_beyond_the_oldest_day():
    month = (Interval(days=1), Interval(months=12))
    assert _days(report_windows(date(2026, 11, 28), date(2026, 11, 30), "month", *month))[0][:2] == (
        "2026-11-01",
        "2026-11-30",
    )
    # The API answers one year back: a bucket that starts before that is left for the next one.
    windows = report_windows(date(2025, 11, 30), date(2026, 11, 30), "month", *month, earliest=date(2025, 11, 30))
    assert _days(windows) == [("2025-12-01", "2026-11-30", "2025-12-01")]
    weeks = report_windows(date(2026, 11, 26), date(2026, 11, 30), "week", Interval(days=1), Interval(months=6))
    assert _days(weeks) == [("2026-11-23", "2026-11-30", "2026-11-23")]  # Monday 23rd to Monday 30th


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
def test_windows_fit_both_readings_of_the_bounds_and_cover_every_day_once(granularity):
    rng = random.Random(granularity)
    bounds = {
        "day": [(Interval(days=2), Interval(days=45)), (Interval(days=1), Interval(months=3))],
        "week": [(Interval(days=1), Interval(months=6)), (Interval(days=14), Interval(days=30))],
        "month": [(Interval(months=3), Interval(months=12)), (Interval(days=1), Interval(months=6))],
    }[granularity]
    for _ in range(200):
        low, high = rng.choice(bounds)
        end = date(2026, 11, 30) - timedelta(days=rng.randint(0, 400))
        start = end - timedelta(days=rng.randint(0, 400))
        windows = report_windows(start, end, granularity, low, high)
        covered = []
        for w in windows:
            assert fits_maximum(w.first, w.last, high) and fits_minimum(w.first, w.last, low), w
            assert w.first == bucket_start(w.first, granularity), w
            assert w.first <= w.emit_from <= w.last
            day = w.emit_from
            while day <= w.last:
                covered.append(day)
                day += timedelta(days=1)
        expected_first = bucket_start(start, granularity)
        assert covered == [expected_first + timedelta(days=i) for i in range((end - expected_first).days + 1)]
        # Whole buckets: every window but the last ends the day before a bucket starts.
        for w in windows[:-1]:
            assert next_bucket(bucket_start(w.last, granularity), granularity) == w.last + timedelta(days=1)


# --- through the connector ------------------------------------------------------------------------------------------

TODAY = b.midnight_days_ago(0).date()


def _metadata(*names: str):
    return response(b.analytics_metadata(names))


def _credit_rows(first: date, last: date) -> dict:
    rows, day = [], first
    while day <= last:
        rows += [b.report_row(day, "small", 1.5), b.report_row(day, "large", 2.5)]
        day += timedelta(days=1)
    return {"data": rows}


def test_daily_credits_over_90_days_are_read_in_45_day_windows_and_no_row_is_emitted_twice(http_mocker):
    start = TODAY - timedelta(days=90)
    windows = [
        (start, start + timedelta(days=44)),
        (start + timedelta(days=45), start + timedelta(days=89)),
        (TODAY - timedelta(days=2), TODAY),
    ]  # one day left: sent as three
    http_mocker.get(request("analytics/metadata"), _metadata("creditConsumption"))
    for first, last in windows:
        http_mocker.get(
            report_rows_request("creditConsumption", first.isoformat(), last.isoformat()),
            response(_credit_rows(first, last)),
        )

    records = records_of(run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(90))))

    keys = [(r["time"][:10], r["key"]) for r in records]
    assert len(keys) == len(set(keys)) == 2 * 91
    assert {day for day, _ in keys} == {(start + timedelta(days=i)).isoformat() for i in range(91)}


def test_active_committers_are_never_asked_for_less_than_three_months(http_mocker):
    # Documented: activeCommitters takes 3 months to 1 year at month granularity. A sync three days back reads this
    # month's bucket, sent as three months; the two months before it are not emitted.
    this_month = b.midnight_days_ago(3).date().replace(day=1)
    first = this_month
    for _ in range(3):
        first = (first - timedelta(days=1)).replace(day=1)
    rows = [b.report_row(month, "ada.lovelace", 3) for month in (first, this_month)]
    http_mocker.get(request("analytics/metadata"), _metadata("activeCommitters"))
    http_mocker.get(
        report_rows_request("activeCommitters", first.isoformat(), TODAY.isoformat(), "month"), response({"data": rows})
    )

    records = records_of(
        run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(3)), analytics_granularity="month")
    )

    assert [(r["time"][:10], r["key"]) for r in records] == [(this_month.isoformat(), "ada.lovelace")]


def _three_day_range():
    return (TODAY - timedelta(days=3)).isoformat(), TODAY.isoformat()


@pytest.mark.parametrize("empty", ["error_500", "empty_200"])
def test_a_range_without_data_is_skipped_at_once_with_one_line_under_either_reading(http_mocker, slept, empty):
    first, last = _three_day_range()
    http_mocker.get(request("analytics/metadata"), _metadata("creditConsumption", "buildAvgDuration"))
    no_data = (
        error(500, "Could not get analytics report")
        if empty == "error_500"
        else response({"data": [], "timeDimensions": {"dateRange": [first, last], "granularity": "day"}})
    )
    http_mocker.get(report_rows_request("creditConsumption", first, last), no_data)
    http_mocker.get(
        report_rows_request("buildAvgDuration", first, last), response({"data": [b.build_report_row(TODAY)]})
    )

    output = run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(3)))

    assert not output.errors
    assert [r["reportName"] for r in records_of(output)] == ["buildAvgDuration"]
    assert slept == [], "no retry, no wait"
    lines = [line for line in log_lines(output) if "creditConsumption" in line]
    assert len(lines) == (1 if empty == "error_500" else 0), lines
    if lines:
        assert "no analytics data for this report and range" in lines[0]


def test_another_server_error_is_still_retried(http_mocker, slept):
    first, last = _three_day_range()
    http_mocker.get(request("analytics/metadata"), _metadata("creditConsumption"))
    http_mocker.get(
        report_rows_request("creditConsumption", first, last),
        [error(500, "Internal Server Error"), response(_credit_rows(TODAY, TODAY))],
    )

    output = run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(3)))

    assert not output.errors and len(records_of(output)) == 2
    assert slept, "the 500 was waited for and retried"


def test_a_server_error_that_stays_fails_the_stream(http_mocker, slept):
    first, last = _three_day_range()
    http_mocker.get(request("analytics/metadata"), _metadata("creditConsumption"))
    http_mocker.get(report_rows_request("creditConsumption", first, last), error(500, "Internal Server Error"))

    output = run_read("analytics_reports", expect_failure=True, start_date=b.iso(b.midnight_days_ago(3)))

    assert not records_of(output)
    assert stream_failure(output, "analytics_reports").failure_type != FailureType.config_error


def test_build_rows_without_time_or_key_stay_distinct_under_the_primary_key(http_mocker):
    # An aggregate answer: rows without `time` or `key`, counts as strings (FIDELITY 1.5).
    first, last = _three_day_range()
    aggregate = [b.build_report_row(None, 4, 4), b.build_report_row(None, 6, 3)]
    http_mocker.get(request("analytics/metadata"), _metadata("buildAvgDuration"))
    http_mocker.get(report_rows_request("buildAvgDuration", first, last), response({"data": aggregate}))

    records = records_of(run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(3))))

    assert [(r["time"], r["key"], r["totalBuilds"]) for r in records] == [
        (f"{first}T00:00:00.000Z", "-", "4"),
        (f"{first}T00:00:00.000Z", "-#2", "6"),
    ]


def test_the_requests_follow_the_metadata_not_a_fixed_step(http_mocker):
    # A report whose metadata allows only 10 days at a time gets 10-day windows.
    metadata = b.analytics_metadata(["creditConsumption"])
    metadata["reports"]["creditConsumption"]["supportedTimeDimensions"] = [
        {"granularity": "day", "minDateRangeInterval": "P1D", "maxDateRangeInterval": "P10D"}
    ]
    http_mocker.get(request("analytics/metadata"), response(metadata))
    start = TODAY - timedelta(days=19)
    http_mocker.get(
        report_rows_request("creditConsumption", start.isoformat(), (start + timedelta(days=9)).isoformat()),
        response({"data": []}),
    )
    http_mocker.get(
        report_rows_request("creditConsumption", (start + timedelta(days=10)).isoformat(), TODAY.isoformat()),
        response({"data": []}),
    )

    run_read("analytics_reports", start_date=b.iso(b.midnight_days_ago(19)))

    assert len([r for r in sent_requests(http_mocker) if r["path"].startswith("analytics/reports/")]) == 2


@pytest.mark.parametrize(
    "granularity, report, advice",
    [
        ("day", "activeCommitters", "set analytics_granularity to one it supports (month),"),
        # Credit reports list `day`, `month` and an aggregate (no granularity), which the setting cannot ask for.
        ("week", "creditConsumption", "set analytics_granularity to one it supports (day, month),"),
    ],
)
def test_a_report_without_the_granularity_is_skipped_naming_only_the_settable_ones(
    http_mocker, granularity, report, advice
):
    http_mocker.get(request("analytics/metadata"), _metadata(report))

    output = run_read("analytics_reports", analytics_granularity=granularity)

    assert not records_of(output) and not output.errors
    assert not [r for r in sent_requests(http_mocker) if r["path"].startswith("analytics/reports/")]
    [line] = [line for line in log_lines(output) if f"Skipping report '{report}'" in line]
    assert advice in line and "none" not in line and "hour" not in line, line
