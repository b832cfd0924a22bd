"""PerBuildRetriever: the per-build fan-out of build_details and build_steps (source_codefresh/per_build.py)."""

from __future__ import annotations

import threading

import pytest
from airbyte_cdk.models import AirbyteLogMessage, AirbyteMessage, Level, Type
from airbyte_cdk.sources.types import Record, StreamSlice

from source_codefresh.per_build import PerBuildRetriever
from source_codefresh.responses import response_json
from unit_tests.responses import make_response


class _Listing:
    """Stands in for the builds listing: the builds of the slice, in order, and the slices it was asked for."""

    def __init__(self, builds):
        self.builds, self.slices = builds, []

    def read_records(self, records_schema, stream_slice=None):
        self.slices.append(stream_slice)
        for build in self.builds:  # a build as a record; anything else (a message) as it is
            yield (
                Record(data=build, stream_name="builds", associated_slice=stream_slice)
                if isinstance(build, dict)
                else build
            )


class _Requester:
    """Answers GET /builds/{id} from a dict of id -> (status, body); records which builds were asked for."""

    def __init__(self, answers, fail_on=None):
        self.answers, self.asked, self.fail_on = answers, [], fail_on

    def send_request(self, stream_slice=None, **kwargs):
        build_id = stream_slice.partition["parent_id"]
        self.asked.append((build_id, stream_slice.extra_fields.get("created")))
        if build_id == self.fail_on:
            raise RuntimeError(f"build {build_id} failed")
        status, body = self.answers[build_id]
        return make_response(body, status=status, url=f"https://g.codefresh.io/api/builds/{build_id}")


class _Selector:
    def select_records(self, response, stream_state, records_schema, stream_slice=None, next_page_token=None):
        yield Record(
            data={**response_json(response), "build_created": stream_slice.extra_fields["created"]},
            stream_name="build_details",
            associated_slice=stream_slice,
        )


def _per_build(builds, answers, workers=3, fail_on=None):
    listing, requester = _Listing(builds), _Requester(answers, fail_on)
    retriever = PerBuildRetriever(
        listing=listing,
        requester=requester,
        record_selector=_Selector(),
        config={"num_workers": workers},
        parameters={},
        max_concurrency="{{ config.num_workers }}",
        name="build_details",
    )
    return retriever, listing, requester


def test_per_build_records_come_as_plain_data_filed_under_the_window():
    builds = [{"id": f"b{i}", "created": f"2026-11-0{i % 9 + 1}T00:00:00.000Z"} for i in range(20)]
    retriever, listing, requester = _per_build(builds, {b["id"]: (200, {"id": b["id"]}) for b in builds})
    window = StreamSlice(partition={}, cursor_slice={"start_time": "2026-11-01", "end_time": "2026-11-20"})

    records = sorted(retriever.read_records({}, window), key=lambda record: int(record["id"][1:]))

    assert [r["id"] for r in records] == [b["id"] for b in builds]
    assert all(type(r) is dict for r in records)  # the CDK files them under `window`, which its cursor tracks
    assert records[3]["build_created"] == builds[3]["created"]
    assert listing.slices == [window]
    assert sorted(requester.asked) == sorted((b["id"], b["created"]) for b in builds)


def test_per_build_skips_builds_the_error_policy_ignored():
    builds = [{"id": "b1", "created": "c1"}, {"id": "gone", "created": "c2"}, {"id": "b3", "created": "c3"}]
    answers = {"b1": (200, {"id": "b1"}), "gone": (404, {"message": "not found"}), "b3": (200, {"id": "b3"})}
    retriever, _, _ = _per_build(builds, answers)

    assert [r["id"] for r in retriever.read_records({}, StreamSlice(partition={}, cursor_slice={}))] == ["b1", "b3"]


def test_per_build_passes_a_message_of_the_listing_on_and_requests_builds_only():
    line = AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO, message="from the listing"))
    builds = [{"id": "b1", "created": "c1"}, line, {"id": "b2", "created": "c2"}]
    retriever, _, requester = _per_build(builds, {"b1": (200, {"id": "b1"}), "b2": (200, {"id": "b2"})})

    out = list(retriever.read_records({}, StreamSlice(partition={}, cursor_slice={})))

    assert line in out, "the listing's message is not lost"
    assert [r["id"] for r in out if isinstance(r, dict)] == ["b1", "b2"]
    assert [asked for asked, _ in requester.asked] == ["b1", "b2"]


def test_per_build_failure_stops_the_window_and_drops_builds_not_started():
    builds = [{"id": f"b{i}", "created": "c"} for i in range(200)]
    retriever, _, requester = _per_build(
        builds, {b["id"]: (200, {"id": b["id"]}) for b in builds}, workers=2, fail_on="b1"
    )

    with pytest.raises(RuntimeError, match="build b1 failed"):
        list(retriever.read_records({}, StreamSlice(partition={}, cursor_slice={})))
    # At most 2 x workers builds were in flight when the failure surfaced; the rest of the listing was never fetched.
    assert len(requester.asked) <= 2 * 2 + 2


def test_per_build_records_get_their_builds_keys_when_asked():
    builds = [{"id": "b1", "created": "2026-11-01T00:00:00.000Z"}, {"id": "b2", "created": "2026-11-02T00:00:00.000Z"}]
    answers = {b["id"]: (200, {"name": f"step of {b['id']}"}) for b in builds}
    plain, _, _ = _per_build(builds, answers)
    keyed, _, _ = _per_build(builds, answers)
    keyed.with_build_keys = True
    window = StreamSlice(partition={}, cursor_slice={})

    assert all("build_id" not in record for record in plain.read_records({}, window))
    assert sorted(keyed.read_records({}, window), key=lambda record: record["build_id"]) == [
        {"name": "step of b1", "build_created": builds[0]["created"], "build_id": "b1"},
        {"name": "step of b2", "build_created": builds[1]["created"], "build_id": "b2"},
    ]


class _ManyRecords(PerBuildRetriever):
    """A build with a great many records (a build log of many steps), read as a generator that counts its progress."""

    produced = 0

    def _read_build(self, records_schema, build_slice):
        for number in range(100_000):
            type(self).produced = number + 1
            yield {"id": build_slice.partition["parent_id"], "step": number}


def test_a_build_with_a_great_many_records_is_read_only_as_fast_as_they_are_taken():
    retriever = _ManyRecords(
        listing=_Listing([{"id": "b1", "created": "c"}]),
        requester=_Requester({}),
        record_selector=_Selector(),
        config={},
        parameters={},
        max_concurrency=2,
    )
    records = iter(retriever.read_records({}, StreamSlice(partition={}, cursor_slice={})))
    for _ in range(100):
        next(records)
    threading.Event().wait(0.3)  # time enough for the worker to run ahead, were it not held back

    assert _ManyRecords.produced <= 100 + 4 * 2 + 1  # what was taken, what waits in the outlet, one in hand
    records.close()  # the reader stops: the worker drops the rest
    threading.Event().wait(1.0)
    assert _ManyRecords.produced <= 100 + 4 * 2 + 2
