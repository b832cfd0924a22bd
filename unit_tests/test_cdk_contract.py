"""What this connector relies on in the CDK (airbyte-cdk, pinned in pyproject.toml) beyond its documented interface.

Each test pins one private attribute or internal behaviour that source_codefresh/, the manifest or the test helpers
depend on, and says where. When a CDK upgrade makes one fail, the message says what to change; a test here that
starts failing because the CDK now does the right thing itself means our workaround can go.

| what the CDK does (internal)                                            | who relies on it                        |
|-------------------------------------------------------------------------|-----------------------------------------|
| HttpResponseFilter matches on its status *or* its predicate             | errors.py `_StatusAndPredicateFilter`   |
| HttpResponseFilter.predicate is an InterpolatedBoolean after init       | errors.py `_predicate_holds`            |
| DefaultErrorHandler only calls `matches(response_or_exception=)`        | errors.py's duck-typed filter           |
| an IGNOREd answer is returned (falsy), an IGNOREd exception is None     | per_build.py, pipeline_runs.py          |
| an IGNORE always logs a line (the CDK's generic one if no message)     | errors.py answers repeats SUCCESS       |
| a SUCCESS for a non-2xx answer returns it (falsy), with no line        | errors.py `_SILENT` (repeated 403s)     |
| a custom retriever's nested retriever gets the stream's transformations | per_build.py clears the listing's       |
| RecordSelector reads `transformations` when it selects                  | per_build.py (cleared after building)   |
| custom components get raw field strings and their $parameters           | every class in source_codefresh/        |
| `extracted_record_count` counts records before the record filter        | paging.py CursorBackedPageIncrement     |
| DefaultPaginator re-reads `initial_token`, wraps `next_page_token`      | paging.py; manifest cursor requester    |
| CheckStream's "Stream <name> is not available: <reason>"                | source.py `_plain_check_message`        |
| `use_tcp_keepalive` mounts the pooled adapter for http:// too           | manifest `definitions.requester`        |
| HttpMocker._validate_all_matchers_called and ._mocker; _pre_process_manifest | unit_tests/conftest.py             |
| HttpRequester reads `stream_response` when it sends, not only at init   | build_logs.py (sets it after building)  |
"""

from __future__ import annotations

import inspect
import logging
import threading
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, List, Mapping, Optional

import pytest
import requests
import requests_mock
from airbyte_cdk.models import Status
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.extractors.dpath_extractor import DpathExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.extractors.record_selector import RecordSelector, extracted_record_count
from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler, HttpResponseFilter
from airbyte_cdk.sources.declarative.requesters.http_requester import HttpRequester
from airbyte_cdk.sources.declarative.requesters.paginators import DefaultPaginator
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.declarative.transformations.add_fields import AddedFieldDefinition, AddFields
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.sources.utils.transform import TransformConfig, TypeTransformer
from airbyte_cdk.test.mock_http import HttpMocker

from source_codefresh.paging import CursorBackedPageIncrement
from source_codefresh.source import SourceCodefresh, _plain_check_message
from unit_tests.responses import make_response

API = "https://cdk-contract.test/api"


# --- errors.py ----------------------------------------------------------------------------------------------------


def _filter(**kwargs: Any) -> HttpResponseFilter:
    return HttpResponseFilter(config={}, parameters=kwargs.pop("parameters", {}), **kwargs)


def test_a_response_filter_matches_on_its_status_even_when_its_predicate_is_false():
    """Why errors.py wraps filters that declare both: the CDK applies a filter when *either* condition holds, so a
    "403 skips the stream if it declares a scope" filter would skip every 403. If this fails, the CDK now requires
    both: `_StatusAndPredicateFilter` can go."""
    skip_if_scoped = _filter(http_codes={403}, predicate="{{ parameters.get('scope') }}", action="IGNORE")
    resolution = skip_if_scoped.matches(make_response({"message": "Forbidden"}, 403))
    assert resolution is not None and resolution.response_action == ResponseAction.IGNORE


def test_a_response_filter_predicate_is_an_interpolated_boolean_holding_the_manifest_text():
    """errors.py `_predicate_holds` / `_has_predicate` read `predicate.condition` and call `predicate.eval(config,
    response=..., headers=..., request_url=...)` instead of the CDK's private `_response_matches_predicate`."""
    scoped = _filter(http_codes={403}, predicate="{{ parameters.get('scope') }}", parameters={"scope": "workflow"})
    unscoped = _filter(http_codes={403}, predicate="{{ parameters.get('scope') }}", parameters={})
    plain = _filter(http_codes={403})
    for response_filter in (scoped, unscoped, plain):
        assert isinstance(response_filter.predicate, InterpolatedBoolean)
        assert response_filter.http_codes == {403}
    assert scoped.predicate.condition == "{{ parameters.get('scope') }}"
    assert plain.predicate.condition == ""  # what `_has_predicate` reads as "no predicate"
    context = {"response": {}, "headers": {}, "request_url": f"{API}/workflow"}
    assert scoped.predicate.eval(scoped.config, **context) is True
    assert unscoped.predicate.eval(unscoped.config, **context) is False


def test_the_default_error_handler_asks_each_filter_only_for_matches_in_order():
    """errors.py replaces some of `response_filters` with `_StatusAndPredicateFilter`, which is not an
    HttpResponseFilter and has only `matches(response_or_exception)`."""
    asked: List[str] = []

    class _DuckFilter:
        def __init__(self, name: str, resolution: Optional[ErrorResolution]) -> None:
            self.name, self.resolution = name, resolution

        def matches(self, response_or_exception: Any) -> Optional[ErrorResolution]:
            asked.append(self.name)
            return self.resolution

    ignore = ErrorResolution(ResponseAction.IGNORE, None, "second")
    handler = DefaultErrorHandler(
        config={}, parameters={}, response_filters=[_filter(http_codes={500}, action="RETRY")]
    )
    handler.response_filters = [_DuckFilter("first", None), _DuckFilter("second", ignore), _DuckFilter("third", None)]

    assert handler.interpret_response(make_response({}, 403)) is ignore
    assert asked == ["first", "second"]


class _IgnoreEverything(DefaultErrorHandler):
    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        return ErrorResolution(ResponseAction.IGNORE, None, "")


def _requester(error_handler: DefaultErrorHandler, **kwargs: Any) -> HttpRequester:
    return HttpRequester(
        name="contract", config={}, parameters={}, url=f"{API}/builds/b1", error_handler=error_handler, **kwargs
    )


def test_an_ignored_answer_is_returned_and_is_falsy_and_an_ignored_exception_returns_none(caplog):
    """per_build.py skips a build with `if not response` (a 404 of a deleted build, a 403 of a missing scope);
    pipeline_runs.py tells "HTTP <status>" from "no answer" by `response is None`."""
    requester = _requester(_IgnoreEverything(config={}, parameters={}))
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{API}/builds/b1", status_code=404, json={"message": "not found"})
        answered = requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
        mocker.get(f"{API}/builds/b1", exc=requests.exceptions.ReadTimeout("no answer"))
        unanswered = requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))

    assert answered is not None and answered.status_code == 404 and not answered
    assert unanswered is None


def test_an_ignore_with_an_empty_message_still_logs_the_cdks_generic_line(caplog):
    """Why errors.py does not answer a stream's repeated 403s with IGNORE: even with `error_message=""` the CDK logs
    its own "Ignoring response ..." line (one line per request, not silence); it answers them SUCCESS instead."""
    requester = _requester(_IgnoreEverything(config={}, parameters={}))
    with caplog.at_level(logging.INFO), requests_mock.Mocker() as mocker:
        mocker.get(f"{API}/builds/b1", status_code=403, json={"message": "Forbidden"})
        requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
    assert any(
        "Ignoring response for 'GET' request" in r.getMessage() and "403" in r.getMessage() for r in caplog.records
    )


class _SucceedEverything(DefaultErrorHandler):
    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        return ErrorResolution(ResponseAction.SUCCESS)


def test_a_success_for_an_error_answer_returns_it_falsy_without_a_line_or_an_exception(caplog):
    """errors.py `_SILENT`: a stream's 403s after the one that skipped it (requests already in flight) are answered
    SUCCESS, so that the retriever reads an empty page (`if not response`) and nothing is logged for them."""
    requester = _requester(_SucceedEverything(config={}, parameters={}))
    with caplog.at_level(logging.INFO), requests_mock.Mocker() as mocker:
        mocker.get(f"{API}/builds/b1", status_code=403, json={"message": "Forbidden"})
        answered = requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
    assert answered is not None and answered.status_code == 403 and not answered
    assert not [r for r in caplog.records if "builds/b1" in r.getMessage()]


# --- per_build.py and custom components ---------------------------------------------------------------------------

_BUILT: List["RecordsWhatItGets"] = []
_BUILT_LOCK = threading.Lock()


@dataclass
class RecordsWhatItGets(Retriever):
    """A custom retriever like PerBuildRetriever (a nested `listing` retriever), keeping what the CDK hands it."""

    listing: Retriever
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    label: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.received_parameters = dict(parameters)
        with _BUILT_LOCK:
            _BUILT.append(self)

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[Any]:
        return iter(())


_MINI_MANIFEST: Mapping[str, Any] = {
    "version": "7.39.1",
    "type": "DeclarativeSource",
    "check": {"type": "CheckStream", "stream_names": ["contract"]},
    "streams": [
        {
            "type": "DeclarativeStream",
            "name": "contract",
            "primary_key": [],
            "$parameters": {"name": "contract", "records_key": "docs"},
            "retriever": {
                "type": "CustomRetriever",
                "class_name": "unit_tests.test_cdk_contract.RecordsWhatItGets",
                "label": "{{ parameters.records_key }}",
                "listing": {
                    "type": "SimpleRetriever",
                    "requester": {"type": "HttpRequester", "url": f"{API}/workflow", "http_method": "GET"},
                    "record_selector": {
                        "type": "RecordSelector",
                        "extractor": {"type": "DpathExtractor", "field_path": []},
                    },
                },
            },
            "transformations": [{"type": "AddFields", "fields": [{"path": ["added"], "value": "by the stream"}]}],
            "schema_loader": {"type": "InlineSchemaLoader", "schema": {"type": "object"}},
        }
    ],
    "spec": {"type": "Spec", "connection_specification": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def built_retriever() -> RecordsWhatItGets:
    del _BUILT[:]
    ConcurrentDeclarativeSource(source_config=dict(_MINI_MANIFEST), config={}).streams(config={})
    assert _BUILT, "the CDK did not build the custom retriever"
    return _BUILT[-1]


def test_a_custom_retrievers_nested_retriever_gets_the_streams_transformations(built_retriever):
    """Why PerBuildRetriever empties `listing.record_selector.transformations`: the stream's transformations (meant
    for build_steps' records) also land on the builds listing's selector. If this fails, the clearing can go."""
    transformations = built_retriever.listing.record_selector.transformations
    assert [type(t) for t in transformations] == [AddFields]


def test_custom_components_get_their_fields_uninterpolated_with_their_parameters(built_retriever):
    """Every class in source_codefresh/ evaluates its own string fields (`InterpolatedString.create(...)`) with the
    `parameters` it is given: the stream's $parameters (records_key, name, scope, cursor_field ...)."""
    assert built_retriever.label == "{{ parameters.records_key }}"
    assert built_retriever.received_parameters.get("records_key") == "docs"
    assert built_retriever.received_parameters.get("name") == "contract"


def test_a_record_selector_applies_the_transformations_it_holds_when_it_selects():
    """PerBuildRetriever clears the listing's transformations after the CDK built the selector: that only works while
    the selector reads `self.transformations` at selection time."""
    add = AddFields(
        fields=[AddedFieldDefinition(path=["added"], value="x", value_type=None, parameters={})], parameters={}
    )
    selector = RecordSelector(
        extractor=DpathExtractor(field_path=["docs"], config={}, parameters={}),
        config={},
        parameters={},
        schema_normalization=TypeTransformer(TransformConfig.NoTransform),
        name="contract",
        transformations=[add],
    )
    window = StreamSlice(partition={}, cursor_slice={})
    transformed = list(selector.select_records(make_response({"docs": [{"id": 1}]}), {}, {}, window))
    selector.transformations = []
    plain = list(selector.select_records(make_response({"docs": [{"id": 1}]}), {}, {}, window))

    assert transformed[0].data == {"id": 1, "added": "x"}
    assert plain[0].data == {"id": 1}


# --- paging.py ----------------------------------------------------------------------------------------------------


def test_extracted_record_count_counts_what_the_extractor_returned_before_the_filter():
    """CursorBackedPageIncrement stops on a page with no records *from the API*, not after a client-side filter
    (client-side incremental images) dropped them all."""
    selector = RecordSelector(
        extractor=DpathExtractor(field_path=["docs"], config={}, parameters={}),
        config={},
        parameters={},
        schema_normalization=TypeTransformer(TransformConfig.NoTransform),
        name="contract",
        record_filter=RecordFilter(config={}, parameters={}, condition="{{ record.id > 2 }}"),
    )
    page = make_response({"docs": [{"id": 1}, {"id": 2}]})
    unread = make_response({"docs": [{"id": 1}]})

    kept = list(selector.select_records(page, {}, {}, StreamSlice(partition={}, cursor_slice={})))

    assert kept == []
    assert extracted_record_count(page, default=0) == 2
    assert extracted_record_count(unread, default=7) == 7


def test_the_paginator_asks_the_strategy_for_a_fresh_initial_token_and_wraps_next_tokens():
    """paging.py makes `initial_token` a property so every listing gets its own session id, and the manifest's
    cursor_backed_requester reads `next_page_token['next_page_token']['session_id']` (and `.get('offset', '')`)."""
    strategy = CursorBackedPageIncrement(config={}, parameters={"records_key": "workflows.docs"})
    paginator = DefaultPaginator(pagination_strategy=strategy, config={}, url_base=API, parameters={})

    first, second = paginator.get_initial_token(), paginator.get_initial_token()
    page_one = make_response({"workflows": {"docs": [{"id": "b1"}]}, "pagination": {"page": 1, "nextPage": True}})
    following = paginator.next_page_token(page_one, 1, None, first)

    assert first["page"] == second["page"] == 1 and first["session_id"] != second["session_id"]
    assert set(following) == {"next_page_token"}
    token = following["next_page_token"]
    assert (token["page"], token["session_id"]) == (2, first["session_id"]) and "offset" not in token


# --- source.py ----------------------------------------------------------------------------------------------------


def test_check_words_a_failing_stream_as_source_py_expects():
    """source.py `_plain_check_message` strips "Stream current_user is not available: " (and the quotes around the
    reason) so the user reads one plain sentence."""
    config = {"api_key": "contract-key", "base_url": API}
    source = SourceCodefresh(config=config)
    logger = logging.getLogger("airbyte.contract")
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{API}/user", status_code=401, json={"message": "Unauthorized"})
        # The platform's config after the manifest's normalization rules (api_root added).
        raw = YamlDeclarativeSource.check(source, logger, {**config, "api_root": API})

    assert raw.status == Status.FAILED
    # The CDK quotes the whole message (and may quote the reason inside it).
    assert raw.message.strip("\"'").startswith("Stream current_user is not available: ")
    plain = _plain_check_message(raw.message)
    assert not plain.startswith("Stream ") and "rejected the API key" in plain


# --- manifest: definitions.requester -------------------------------------------------------------------------------


def test_tcp_keepalive_mounts_the_pooled_adapter_for_plain_http_too():
    """The manifest sets `use_tcp_keepalive: true` partly for its side effect: the CDK's 40-connection pool also
    for http:// (the local sandbox), so `num_workers` threads reuse connections there as they do over https."""
    requester = _requester(DefaultErrorHandler(config={}, parameters={}), use_tcp_keepalive=True)
    session = requester._http_client._session  # observed only: the connector never touches it
    pool = session.get_adapter("http://127.0.0.1:8765/api").poolmanager.connection_pool_kw
    assert pool.get("maxsize", 10) >= 16


# --- build_logs.py --------------------------------------------------------------------------------------------------


def test_a_requester_streams_the_body_when_stream_response_is_set_after_it_was_built():
    """build_logs.py sets `stream_response = True` on the storage requester after the CDK built it (a requester
    declared inside a custom component gets no streaming decoder), so that a 50 MB log is read as it arrives. If the
    CDK stops reading the attribute at send time, the whole body would be loaded before the first byte is parsed."""
    requester = _requester(DefaultErrorHandler(config={}, parameters={}))
    requester.stream_response = True
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{API}/builds/b1", content=b'{"steps": []}')
        response = requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
        sent = mocker.request_history[0]
    assert sent.stream is True, "the storage GET must be sent with stream=True"
    assert response is not None and response._content_consumed is False, "the body must not be read yet"


# --- unit_tests/conftest.py -----------------------------------------------------------------------------------------


def test_the_private_helpers_the_unit_test_fixtures_use_exist():
    """conftest.py: the `http_mocker` fixture calls HttpMocker._validate_all_matchers_called (the decorator form
    does it itself), `sent_requests` reads HttpMocker._mocker.request_history, and `parse_manifest_once` replaces
    ConcurrentDeclarativeSource._pre_process_manifest. A rename breaks those fixtures loudly; this says where."""
    assert callable(HttpMocker._validate_all_matchers_called)
    with HttpMocker() as mocker:
        assert isinstance(mocker._mocker, requests_mock.Mocker)
    assert list(inspect.signature(ConcurrentDeclarativeSource._pre_process_manifest).parameters)[:2] == [
        "self",
        "manifest",
    ]
