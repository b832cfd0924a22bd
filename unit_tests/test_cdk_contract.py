"""What this connector relies on in the CDK (airbyte-cdk, pinned in pyproject.toml) beyond its documented interface.

Each test pins one private attribute or internal behaviour that source_codefresh/, the manifest or the test helpers
depend on, and says where. When a CDK upgrade makes one fail, the message says what to change; a test here that
starts failing because the CDK now does the right thing itself means our workaround can go.

| what the CDK does (internal)                                            | who relies on it                        |
|-------------------------------------------------------------------------|-----------------------------------------|
| CompositeErrorHandler answers what the first handler answers RETRY,     | error_handlers.py `ErrorRules` (PASS)   |
|   IGNORE or SUCCESS to; an unraised FAIL asks the next handler          |                                         |
| a read builds its streams while `read()` runs, on the reading thread   | access.py `one_read`                    |
| an IGNOREd answer is returned (falsy), an IGNOREd exception is None     | per_build.py, pipeline_runs.py          |
| DefaultPaginator re-reads `initial_token`, wraps `next_page_token`      | paging.py; manifest cursor requester    |
| CheckStream's "Stream <name> is not available: <reason>"                | source.py `_plain_check_message`        |
| `use_tcp_keepalive` mounts the pooled adapter for http:// too           | manifest `definitions.connection`       |
| ConcurrentDeclarativeSource._pre_process_manifest(self, manifest)       | unit_tests/conftest.py (manifest cache) |
| HttpRequester reads `stream_response` when it sends, not only at init   | build_logs.py (sets it after building)  |
| a ConcurrentCursor given `{cursor: value}` cuts its windows from there  | state.py FollowsUnfinishedBuildsCursor  |
|   (from start_datetime when later), and says where in `start`           |                                         |
| `_build_concurrent_cursor(model, stream_slicer, config)` builds a       | state.py `ComponentFactory` (override)  |
|   stream's cursor; a FinalStateCursor keeps the partition router        |                                         |
| `create_default_stream` hands the stream's cursor to a custom retriever | pipeline_runs.py (`cursor` field)       |
|   that declares a `cursor` field                                        |                                         |
| the record filter of a client-side cursor is handed to the selector of  | per_build.py listing, graphql.py        |
|   a retriever nested in a custom retriever, with the stream's cursor    |   `NodesOfListedRetriever`              |
| a source's component factory is `_constructor` (settings as ours)       | source.py `__init__` replaces it        |
| `_streams_by_name(names)` builds those; `_concurrent_source.read(...)`  | source.py `read` (catalog's streams)    |
| the entrypoint prints each message through its print buffer (stdout)   | source.py `_flushing_states`            |
|   before it asks for the next                                           |                                         |
| no private name of ours is also one of a CDK base class (but the above) | every CDK subclass in source_codefresh/ |
| a requester's authenticator is called on every request it sends         | transport.py `GuardedAuthenticator`     |
|   (retries too), before its response hooks, which run before the body  |                                         |
| an exception of the error handler leaves `send_request` as it is        | error_handlers.py `decided`, access.py  |
| the HTTP client logs an answer's body and a request's URL as `extra`    | transport.py `quiet_http_log`           |
|   fields on the requester's `logger`; the rate budget logs URLs on      |                                         |
|   "airbyte"                                                             |                                         |
| a stream's non-traced exception: "An unexpected error occurred in       | source.py `explained`, `read`           |
|   stream <name>: <type>"; the last: "During the sync, the following ..." |                                         |

CONTRIBUTING.md ("CDK internals we rely on, and why") says why each has no public way around.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
import logging
import pkgutil
import sys
import textwrap
from datetime import datetime
from typing import Any, FrozenSet, Iterable, List, Mapping, Optional, Set

import pytest
import requests
import requests_mock
from airbyte_cdk.models import Status, SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    DatetimeBasedCursor as DatetimeBasedCursorModel,
)
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.sources.declarative.requesters.error_handlers import CompositeErrorHandler, DefaultErrorHandler
from airbyte_cdk.sources.declarative.requesters.http_requester import HttpRequester
from airbyte_cdk.sources.declarative.requesters.paginators import DefaultPaginator
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.state_builder import StateBuilder
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

import source_codefresh
from source_codefresh.graphql import NodesOfListedRetriever
from source_codefresh.paging import CursorBackedPageIncrement
from source_codefresh.pipeline_runs import PipelineRunRetriever
from source_codefresh.source import SourceCodefresh, _plain_check_message, manifest_path
from source_codefresh.state import FollowsUnfinishedBuildsCursor, StartedRunsCursor
from unit_tests.responses import make_response

API = "https://cdk-contract.test/api"


# --- error_handlers.py, access.py ---------------------------------------------------------------------------------


class _Answers(DefaultErrorHandler):
    """A handler that answers each status with the action it was given, and asks nothing else."""

    def __init__(self, actions: Mapping[int, ResponseAction]) -> None:
        super().__init__(config={}, parameters={})
        self.actions, self.asked = actions, 0

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        self.asked += 1
        return ErrorResolution(self.actions.get(response_or_exception.status_code, ResponseAction.FAIL))


def test_a_composite_error_handler_answers_the_first_handlers_retry_ignore_or_success_and_passes_a_fail_on():
    """error_handlers.py: a named handler answers PASS (an unraised FAIL) for what it does not name, and the next
    handler of the ErrorPolicy (a CompositeErrorHandler) is asked; its RETRY, IGNORE or SUCCESS is the answer."""
    first = _Answers({404: ResponseAction.IGNORE})
    second = _Answers({404: ResponseAction.RETRY, 500: ResponseAction.RETRY, 200: ResponseAction.SUCCESS})
    composite = CompositeErrorHandler(error_handlers=[first, second], parameters={})

    assert composite.interpret_response(make_response({}, 404)).response_action == ResponseAction.IGNORE
    assert (first.asked, second.asked) == (1, 0)
    for status, action in ((500, ResponseAction.RETRY), (200, ResponseAction.SUCCESS)):
        assert composite.interpret_response(make_response({}, status)).response_action == action
    assert (first.asked, second.asked) == (3, 2)


def test_a_read_builds_its_streams_while_read_runs(monkeypatch):
    """access.py: the components of one read share the ReadAccess that SourceCodefresh.read opens (`one_read`) and
    take it when they are built, so the CDK must build the read's streams inside `read()`, on the thread iterating it,
    and not at the source's construction. If this fails, a missing scope costs a request per slice again."""
    from source_codefresh import access

    built: List[Optional[access.ReadAccess]] = []
    original = access.ScopeGatedRequester.__post_init__

    def recording(self: Any, parameters: Mapping[str, Any]) -> None:
        original(self, parameters)
        built.append(access._THIS_READ.get())

    monkeypatch.setattr(access.ScopeGatedRequester, "__post_init__", recording)
    catalog = CatalogBuilder().with_stream("teams", SyncMode.full_refresh).build()
    source = SourceCodefresh(catalog=catalog, config=dict(CONFIG), state=None)
    assert not built, "built at the source's construction, outside any read"
    with requests_mock.Mocker() as http:
        http.get(requests_mock.ANY, json=[])
        list(source.read(logging.getLogger("contract"), dict(CONFIG), catalog, None))
    assert built and built[0] is not None and all(each is built[0] for each in built)


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


# --- paging.py ----------------------------------------------------------------------------------------------------


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


# --- transport.py, error_handlers.py: every request's guard ----------------------------------------------------------


def test_the_authenticator_is_called_for_every_attempt_and_its_hooks_run_before_the_body_is_read(mocker):
    """transport.py checks each request's URL when the CDK's HTTP client authenticates it, and bounds an answer's body
    in a response hook that requests runs before it reads the body (also for answers the CDK does not stream)."""
    from source_codefresh.transport import GuardedAuthenticator

    mocker.patch("time.sleep")
    guard = GuardedAuthenticator(config={"api_root": API}, parameters={"name": "contract"})
    called, unread = [], []
    checked = guard.problem
    mocker.patch.object(guard, "problem", side_effect=lambda url: called.append(url) or checked(url))
    real_hook = guard._bound
    mocker.patch.object(
        guard, "_bound", side_effect=lambda r, **kw: unread.append(r._content is False) or real_hook(r, **kw)
    )
    requester = HttpRequester(
        name="contract",
        config={},
        parameters={},
        url=f"{API}/builds/b1",
        authenticator=guard,
        error_handler=DefaultErrorHandler(config={}, parameters={}),
    )
    with requests_mock.Mocker() as http:
        http.get(f"{API}/builds/b1", [{"status_code": 502, "json": {}}, {"status_code": 200, "json": {"id": "b1"}}])
        answer = requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))

    assert answer.json() == {"id": "b1"}
    assert len(called) >= 2 and unread == [True, True], "both attempts authenticated, each hook before the body"
    assert isinstance(answer.raw, source_codefresh.transport.BoundedBody)


def test_an_exception_of_the_error_handler_leaves_send_request_unchanged():
    """error_handlers.py raises a FAIL itself with the policy's sentence (the CDK's would add the raw body of the
    answer); access.py raises what ScopeGatedRequester reads as "no answer" (AlreadySkipped) or "once per stream"."""

    class _Raising(DefaultErrorHandler):
        def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
            raise AirbyteTracedException(message="ours")

    with requests_mock.Mocker() as http:
        http.get(f"{API}/builds/b1", status_code=401, json={"password": "in the body"})
        with pytest.raises(AirbyteTracedException) as raised:
            _requester(_Raising(config={}, parameters={})).send_request(
                stream_slice=StreamSlice(partition={}, cursor_slice={})
            )
    assert raised.value.message == "ours" and len(http.request_history) == 1


def test_the_http_client_logs_bodies_and_urls_as_extra_fields_of_the_requesters_logger(caplog):
    """transport.py `quiet_http_log` removes the `body` and the foreign query of `url` from these records."""
    requester = _requester(DefaultErrorHandler(config={}, parameters={}))
    with caplog.at_level(logging.DEBUG, logger=requester.logger.name), requests_mock.Mocker() as http:
        http.get(f"{API}/builds/b1?X-Goog-Signature=s", json={"password": "p"})
        requester.send_request(
            stream_slice=StreamSlice(partition={}, cursor_slice={}), request_params={"X-Goog-Signature": "s"}
        )
    lines = {record.getMessage(): record.__dict__ for record in caplog.records if record.name == requester.logger.name}
    assert '"password"' in str(lines["Receiving response"]["body"])
    assert "X-Goog-Signature=s" in str(lines["Making outbound API request"]["url"])


def test_the_cdks_words_for_a_stream_that_raised_something_else():
    """source.py rewrites these two messages of the CDK's concurrent read into its own sentences."""
    from airbyte_cdk.exception_handler import generate_failed_streams_error_message
    from airbyte_cdk.sources.concurrent_source import concurrent_read_processor

    text = inspect.getsource(concurrent_read_processor.ConcurrentReadProcessor.on_exception)
    assert (
        'f"An unexpected error occurred in stream {exception.stream_name}: {type(exception.exception).__name__}"'
        in text
    )
    assert generate_failed_streams_error_message({"s": [ValueError("v")]}).startswith(
        source_codefresh.source._CDK_STREAMS_FAILED
    )
    assert source_codefresh.source._CDK_UNEXPECTED == "An unexpected error occurred in stream "


# --- unit_tests/conftest.py -----------------------------------------------------------------------------------------


def test_the_private_method_the_manifest_cache_of_the_unit_tests_replaces_exists():
    """conftest.py `parse_manifest_once` replaces ConcurrentDeclarativeSource._pre_process_manifest (resolving the
    manifest, the most of a mocked sync's time) by a cache; the CDK offers no public way to reuse a resolved manifest.
    A rename would silently turn the cache off (every mocked sync slower); this says where."""
    # Read from the CDK's source: `parse_manifest_once`, once active, has replaced the method itself.
    (pre_process,) = [
        node
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(ConcurrentDeclarativeSource))))
        if isinstance(node, ast.FunctionDef) and node.name == "_pre_process_manifest"
    ]
    assert [argument.arg for argument in pre_process.args.args][:2] == ["self", "manifest"]


# --- state.py: the builds cursor and the component factory ----------------------------------------------------------

CONFIG = {"api_key": "contract-key", "start_date": "2026-01-01T00:00:00Z"}
# A saved state of the builds streams: the newest build read, and a range of builds unfinished when read.
FOLLOWED_STATE = {
    "created": "2026-03-01T00:00:00.000Z",
    "unfinished": [["2026-02-27T00:00:00.000Z", "2026-02-28T00:00:00.000Z"]],
}


@pytest.fixture(scope="module")
def codefresh_source(parse_manifest_once) -> SourceCodefresh:
    return SourceCodefresh(config=CONFIG)


@pytest.fixture(scope="module")
def builds_cursor_definition(parse_manifest_once) -> Mapping[str, Any]:
    """The builds stream's DatetimeBasedCursor as the manifest declares it (references resolved by the CDK)."""
    manifest = YamlDeclarativeSource(path_to_yaml=str(manifest_path()), config=CONFIG).resolved_manifest
    (builds,) = [s for s in manifest["streams"] if s.get("name") == "builds"]
    return copy.deepcopy(builds["incremental_sync"])


def _built_stream(source: ConcurrentDeclarativeSource, name: str) -> Any:
    streams = source._streams_by_name([name])
    assert streams, f"_streams_by_name([{name!r}]) built nothing: see test_read_hands_the_catalogs_streams_only_..."
    return streams[0]


def _cdk_cursor(definition: Mapping[str, Any], state: Mapping[str, Any]) -> ConcurrentCursor:
    """The ConcurrentCursor the CDK's own factory builds for `definition`, called as the CDK calls it."""
    return ModelToComponentFactory().create_concurrent_cursor_from_datetime_based_cursor(
        model_type=DatetimeBasedCursorModel,
        component_definition=copy.deepcopy(dict(definition)),
        stream_name="builds",
        stream_namespace=None,
        stream_state=dict(state),
        config=CONFIG,
    )


def _windows(cursor: Any) -> List[Any]:
    cut = [(s.cursor_slice["start_time"], s.cursor_slice["end_time"]) for s in cursor.stream_slices()]
    return cut[:-1] + [cut[-1][0]]  # the last window ends "now", read at two instants


@pytest.mark.parametrize(
    "state, first_window",
    [
        ({}, ("2026-01-01T00:00:00.000Z", "2026-06-29T23:59:59.999Z")),  # from start_datetime
        ({"created": "2026-02-27T00:00:00.000Z"}, ("2026-02-27T00:00:00.000Z", "2026-08-25T23:59:59.999Z")),
        ({"created": "2025-06-01T00:00:00.000Z"}, ("2026-01-01T00:00:00.000Z", "2026-06-29T23:59:59.999Z")),
    ],
)
def test_the_cdks_cursor_cuts_its_windows_from_a_saved_value_or_start_datetime_when_later(
    builds_cursor_definition, state, first_window
):
    """state.py FollowsUnfinishedBuildsCursor hands the CDK's cursor for the manifest's DatetimeBasedCursor the state
    `{created: <first build to read again>}`, takes the windows it cuts, and reads where they start from its `start`.
    If this fails, a sync would no longer start at the first unfinished build (source_codefresh/state.py)."""
    cursor = _cdk_cursor(builds_cursor_definition, state)
    first = next(iter(cursor.stream_slices())).cursor_slice
    assert (first["start_time"], first["end_time"]) == first_window
    assert cursor.start == datetime.fromisoformat(first_window[0].replace("Z", "+00:00"))


def test_the_cdk_builds_each_streams_cursor_in_build_concurrent_cursor_and_hands_it_to_the_custom_retriever(
    codefresh_source, builds_cursor_definition, monkeypatch
):
    """state.py `ComponentFactory` overrides the private ModelToComponentFactory._build_concurrent_cursor(model,
    stream_slicer, config): for the builds streams (`$parameters.follow_hours`) a FollowsUnfinishedBuildsCursor around
    the CDK's own cursor, for pipeline_runs (`$parameters.checkpoint: started_runs`) a StartedRunsCursor, a
    FinalStateCursor whose state holds the started builds. The CDK must build each stream's cursor there, keep the
    partition router as the stream's slicer for a FinalStateCursor (one partition per configured run), and pass the
    cursor to a custom retriever that declares a `cursor` field (PipelineRunRetriever saves what it started there)."""
    build = getattr(ModelToComponentFactory, "_build_concurrent_cursor", None)
    assert build is not None and list(inspect.signature(build).parameters) == [
        "self",
        "model",
        "stream_slicer",
        "config",
    ], (
        "ModelToComponentFactory._build_concurrent_cursor is gone or changed: find where the CDK now builds a stream's "
        "cursor and build the builds streams' and pipeline_runs' cursors there (ComponentFactory, "
        "source_codefresh/state.py)"
    )
    builds = _built_stream(codefresh_source, "builds")
    assert isinstance(builds.cursor, FollowsUnfinishedBuildsCursor), "builds no longer gets ComponentFactory's cursor"
    assert _windows(builds.cursor) == _windows(_cdk_cursor(builds_cursor_definition, {}))

    handed: List[Any] = []
    built = PipelineRunRetriever.__post_init__
    monkeypatch.setattr(
        PipelineRunRetriever,
        "__post_init__",
        lambda self, parameters: (handed.append(self.cursor), built(self, parameters)),
    )
    runs = [{"pipeline": "demo/one"}, {"pipeline": "demo/two"}]
    stream = _built_stream(SourceCodefresh(config={**CONFIG, "pipeline_runs": runs}), "pipeline_runs")

    assert isinstance(stream.cursor, StartedRunsCursor), "pipeline_runs no longer gets ComponentFactory's cursor"
    assert handed and all(cursor is stream.cursor for cursor in handed), (
        "the CDK no longer hands the stream's cursor to the custom retriever (`cursor=`): PipelineRunRetriever cannot "
        "save what it started (source_codefresh/pipeline_runs.py)"
    )
    partitions = [partition.to_slice().partition for partition in stream.generate_partitions()]
    assert partitions == [{"run_index": "0"}, {"run_index": "1"}], partitions


def test_the_stream_cursors_record_filter_reaches_the_selector_of_a_retriever_nested_in_a_custom_one(monkeypatch):
    """gitops_workflow_nodes reads the workflows listing inside NodesOfListedRetriever (and build_details the builds
    listing inside PerBuildRetriever): the stream's cursor follows the listed records because the CDK hands the
    client-side record filter, built on the stream's cursor, to the nested retriever's selector too."""
    listings: List[Any] = []
    built = NodesOfListedRetriever.__post_init__
    monkeypatch.setattr(
        NodesOfListedRetriever,
        "__post_init__",
        lambda self, parameters: (listings.append(self.listing), built(self, parameters)),
    )
    saved = {"workflow_created": "2026-03-01T00:00:00.000Z", "unfinished": []}
    state = StateBuilder().with_stream_state("gitops_workflow_nodes", saved)
    stream = _built_stream(SourceCodefresh(config=CONFIG, state=state.build()), "gitops_workflow_nodes")
    assert isinstance(stream.cursor, FollowsUnfinishedBuildsCursor)
    (window,) = stream.cursor.stream_slices()
    listed = [
        {"metadata": {"uid": "old", "created": "2026-02-01T00:00:00.000Z"}, "status": {"phase": "Succeeded"}},
        {"metadata": {"uid": "new", "created": "2026-03-02T00:00:00.000Z"}, "status": {"phase": "Running"}},
    ]
    (listing,) = listings
    record_filter = listing.record_selector.record_filter
    assert record_filter is not None, (
        "the CDK no longer hands the stream's record filter to a nested retriever's selector: NodesOfListedRetriever "
        "and PerBuildRetriever must filter their listings with the stream's cursor themselves"
    )
    kept = list(record_filter.filter_records(listed, stream_state={}, stream_slice=window))
    assert [w["metadata"]["uid"] for w in kept] == ["new"]
    assert stream.cursor.state["unfinished"] == [], "the window is not closed yet"


# --- source.py: the component factory and the read of the catalog's streams --------------------------------------


def test_the_source_replaces_the_cdks_component_factory_keeping_its_settings(parse_manifest_once):
    """source.py replaces `self._constructor` (the factory the CDK builds every stream with; there is no argument for
    one) by ComponentFactory(message_repository=, connector_state_manager=, configured_catalog=), after the CDK's
    constructor. The CDK must still keep it there, with no setting but those three differing from a plain
    YamlDeclarativeSource's, and build the streams with it: the builds cursor starts from the state the source got."""
    accepted = set(inspect.signature(ModelToComponentFactory.__init__).parameters)
    assert {"message_repository", "connector_state_manager", "configured_catalog"} <= accepted
    plain = YamlDeclarativeSource(path_to_yaml=str(manifest_path()), config=CONFIG)
    assert type(getattr(plain, "_constructor", None)) is ModelToComponentFactory, (
        "ConcurrentDeclarativeSource._constructor is gone: find where the CDK now keeps its component factory, and put "
        "ComponentFactory there (SourceCodefresh.__init__, source_codefresh/source.py)"
    )
    state = StateBuilder().with_stream_state("builds", FOLLOWED_STATE).build()
    source = SourceCodefresh(config=CONFIG, state=state)  # as built: no stream built yet (that sets the API budget)
    ours = source._constructor
    assert ours.get_message_repository() is source._message_repository
    for name, value in vars(plain._constructor).items():
        if value is None or isinstance(value, (bool, int, float, str)):
            assert vars(ours).get(name) == value, (
                f"the CDK now builds its factory with {name}={value!r}: pass it to ComponentFactory in "
                "source_codefresh/source.py"
            )
    assert _built_stream(source, "builds").cursor.state == FOLLOWED_STATE


def test_read_hands_the_catalogs_streams_only_to_the_concurrent_source(codefresh_source, monkeypatch):
    """source.py `read` builds the catalog's streams with the private `_streams_by_name(names)` (None when a name is
    not a static stream) instead of all of them (`streams()`), and reads them with `_concurrent_source.read(streams)`,
    in the catalog's order."""
    build_some = getattr(ConcurrentDeclarativeSource, "_streams_by_name", None)
    assert build_some is not None, (
        "ConcurrentDeclarativeSource._streams_by_name is gone: find how the CDK now builds some streams only "
        "(CheckStream does), or build them all in SourceCodefresh.read (source_codefresh/source.py)"
    )
    assert hasattr(codefresh_source, "_concurrent_source"), (
        "ConcurrentDeclarativeSource._concurrent_source is gone: find what the CDK's read now reads streams with "
        "(SourceCodefresh.read, source_codefresh/source.py)"
    )
    names = list(inspect.signature(build_some).parameters)
    assert names == ["self", "stream_names"], (
        f"ConcurrentDeclarativeSource._streams_by_name now takes {names}: update SourceCodefresh.read "
        "(source_codefresh/source.py)"
    )
    assert list(inspect.signature(codefresh_source._concurrent_source.read).parameters) == ["streams"]
    handed: List[Any] = []

    def concurrent_read(streams: List[Any]) -> Iterable[Any]:
        handed.extend(streams)
        return iter(())

    def every_stream(config: Any) -> Any:
        raise AssertionError(
            "SourceCodefresh.read built every stream: `_streams_by_name` answered None for static streams; see what "
            "the CDK now needs to build some streams only (source_codefresh/source.py)"
        )

    monkeypatch.setattr(codefresh_source._concurrent_source, "read", concurrent_read)
    monkeypatch.setattr(codefresh_source, "streams", every_stream)
    catalog = (
        CatalogBuilder()
        .with_stream("builds", SyncMode.incremental)
        .with_stream("projects", SyncMode.full_refresh)
        .build()
    )

    assert list(codefresh_source.read(logging.getLogger("airbyte.contract"), CONFIG, catalog)) == []
    assert [stream.name for stream in handed] == ["builds", "projects"]


def test_the_entrypoint_prints_each_message_through_its_print_buffer_before_it_asks_for_the_next():
    """source.py `_flushing_states` flushes sys.stdout when the message after a state is asked for: by then `launch`
    has printed the state into the CDK's print buffer, which is sys.stdout while it runs and writes only when a later
    print comes 0.1 s after its last write. integration_tests/test_pipeline_runs.py (an attempt killed while it waits)
    shows the whole; this says where to look when it fails."""
    from airbyte_cdk import entrypoint
    from airbyte_cdk.utils.print_buffer import PrintBuffer

    (loop,) = [node for node in ast.walk(ast.parse(inspect.getsource(entrypoint.launch))) if isinstance(node, ast.For)]
    assert "source_entrypoint.run" in ast.unparse(loop.iter)
    printed = [node for statement in loop.body for node in ast.walk(statement) if isinstance(node, ast.Call)]
    assert any(ast.unparse(call.func) == "print" for call in printed), (
        "airbyte_cdk.entrypoint.launch no longer prints each message as it comes: see how it writes them now, and "
        "whether source_codefresh/source.py `_flushing_states` still pushes a checkpoint out at once"
    )
    assert "with PRINT_BUFFER" in inspect.getsource(entrypoint.launch)
    assert "sys.stdout = self" in inspect.getsource(PrintBuffer.__enter__)


# --- every class in source_codefresh/ that extends a CDK class ------------------------------------------------------

# The private names of a CDK base class that ours replace on purpose (each pinned above).
INTENDED_OVERRIDES = {
    "SourceCodefresh": {"_constructor"},
    "ComponentFactory": {"_build_concurrent_cursor"},
}


def _is_private_attribute_of_self(target: ast.expr) -> bool:
    return (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
        and target.attr.startswith("_")
        and not target.attr.startswith("__")
    )


@functools.lru_cache(maxsize=None)
def _module_tree(module: str) -> ast.Module:
    return ast.parse(inspect.getsource(sys.modules[module]))


@functools.lru_cache(maxsize=None)
def _private_names_defined(cls: type) -> FrozenSet[str]:
    """The private methods and properties a class defines, and the instance attributes its code assigns."""
    names = {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")} - {"_abc_impl"}
    (definition,) = [
        node
        for node in ast.walk(_module_tree(cls.__module__))
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__
    ]
    assigned: List[ast.expr] = []
    for node in ast.walk(definition):
        if isinstance(node, ast.Assign):
            assigned.extend(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            assigned.append(node.target)
    while assigned:
        target = assigned.pop()
        if isinstance(target, ast.Tuple):
            assigned.extend(target.elts)
        elif _is_private_attribute_of_self(target):
            names.add(target.attr)
    return frozenset(names)


def _cdk_subclasses() -> List[type]:
    found = []
    for module_info in pkgutil.iter_modules(source_codefresh.__path__):
        module = importlib.import_module(f"source_codefresh.{module_info.name}")
        for cls in vars(module).values():
            if (
                isinstance(cls, type)
                and cls.__module__ == module.__name__
                and any(base.__module__.startswith("airbyte_cdk.") for base in cls.__mro__[1:])
            ):
                found.append(cls)
    return found


def test_no_private_name_of_ours_is_also_one_of_the_cdk_base_classes():
    """A class of source_codefresh/ that extends a CDK class keeps private attributes and methods of its own: a CDK
    release whose base class starts using one of the same names would overwrite ours, or ours its, silently. The
    overrides meant as such are INTENDED_OVERRIDES (each pinned by a test above)."""
    classes = _cdk_subclasses()
    assert {"FollowsUnfinishedBuildsCursor", "SourceCodefresh", "PerBuildRetriever"} <= {c.__name__ for c in classes}
    for cls in classes:
        cdk_names: Set[str] = set()
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("airbyte_cdk."):
                cdk_names |= _private_names_defined(base)
        ours = set().union(*(_private_names_defined(c) for c in cls.__mro__ if c.__module__.startswith("source_")))
        intended = INTENDED_OVERRIDES.get(cls.__name__, set())
        assert intended <= cdk_names, (
            f"the CDK no longer has {sorted(intended - cdk_names)}, which {cls.__name__} replaces: see the test of "
            "that name above"
        )
        assert ours & cdk_names <= intended, (
            f"{cls.__name__} ({cls.__module__}) and its CDK base class both use {sorted(ours & cdk_names - intended)}: "
            "rename ours"
        )
