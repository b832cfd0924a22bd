"""Record extractors and the once-parsed answer (source_codefresh/extractors.py, source_codefresh/responses.py)."""

from __future__ import annotations

import pytest

from source_codefresh import responses
from source_codefresh.extractors import BuildStepsExtractor, EnvelopeExtractor
from source_codefresh.responses import response_json
from unit_tests.responses import make_response


def _revision(steps):
    return {"_id": "r", "context": {"workflowMetadata": {}, "stepsMetadata": steps}, "metadata": {}}


def test_steps_come_from_the_last_revision_without_the_pseudo_step():
    first = _revision({"old": {"status": "running"}})
    last = _revision(
        {
            "Initializing Process": {"type": "builtin", "status": "success", "totalTime": 900},
            "Initializing": {"type": "builtin", "status": "success"},
            "build": {"type": "build", "status": "success", "totalTime": 61000, "currentAttempt": 1},
        }
    )
    records = list(BuildStepsExtractor(config={}, parameters={}).extract_records(make_response([first, last])))
    assert [record["name"] for record in records] == ["Initializing Process", "build"]
    assert records[1] == {
        "name": "build",
        "type": "build",
        "status": "success",
        "totalTime": 61000,
        "currentAttempt": 1,
    }


@pytest.mark.parametrize("body", [[], [{"context": {}}], [{"context": {"stepsMetadata": None}}]])
def test_a_build_without_revision_or_steps_has_no_steps(body):
    assert list(BuildStepsExtractor(config={}, parameters={}).extract_records(make_response(body))) == []


def test_the_answer_is_parsed_once_and_kept_on_themake_response(mocker):
    page = make_response({"docs": [{"_id": "a"}]})
    loads = mocker.spy(responses.orjson, "loads")
    assert response_json(page) is response_json(page)
    assert loads.call_count == 1


def test_a_body_that_is_not_json_raises_and_is_not_kept():
    page = make_response(b"<html>login</html>")
    for _ in range(2):
        with pytest.raises(ValueError):
            response_json(page)


@pytest.mark.parametrize(
    "records_key, body, expected",
    [
        ("docs", {"docs": [{"_id": "a"}, {"_id": "b"}], "count": 2}, [{"_id": "a"}, {"_id": "b"}]),
        ("workflows.docs", {"workflows": {"docs": [{"id": "a"}]}, "pagination": {}}, [{"id": "a"}]),
        ("", [{"_id": "a"}], [{"_id": "a"}]),
        ("", {"_id": "a"}, [{"_id": "a"}]),
        ("", {}, []),
        ("docs", {"message": "Forbidden"}, []),
        ("workflows.docs", {"workflows": None}, []),
    ],
    ids=["envelope", "nested envelope", "root list", "root object", "empty object", "missing key", "null on the way"],
)
def test_envelope_extractor_matches_dpath_without_wildcards(records_key, body, expected):
    extractor = EnvelopeExtractor(
        config={}, parameters={"records_key": records_key}, records_key="{{ parameters.records_key }}"
    )
    assert list(extractor.extract_records(make_response(body))) == expected


def test_envelope_extractor_yields_nothing_for_a_body_that_is_not_json():
    extractor = EnvelopeExtractor(config={}, parameters={}, records_key="docs")
    assert list(extractor.extract_records(make_response(b"not json"))) == []
