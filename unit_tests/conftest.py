"""Helpers for the per-stream mock-HTTP tests (the CDK's HttpMocker and entrypoint_wrapper)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

import pytest
import requests_mock
from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.mock_http import HttpMocker, HttpRequest, HttpResponse
from airbyte_cdk.test.mock_http.request import ANY_QUERY_PARAMS
from airbyte_cdk.test.models.outcome import ExpectedOutcome
from airbyte_cdk.test.state_builder import StateBuilder

from source_codefresh import SourceCodefresh

API = "https://g.codefresh.io/api"
API_KEY = "unit-test-key.5e3b1c0ffee0ddba11c0ffee0ddba11c"
ACCOUNT_ID = "5f0000000000000000000a01"
START_DATE = "2026-09-01T00:00:00Z"


def config(**overrides: Any) -> Dict[str, Any]:
    return {"api_key": API_KEY, "start_date": START_DATE, "num_workers": 4, **overrides}


def catalog(stream: str, sync_mode: SyncMode = SyncMode.full_refresh) -> ConfiguredAirbyteCatalog:
    return CatalogBuilder().with_stream(stream, sync_mode).build()


def run_read(
    stream: str,
    *,
    sync_mode: SyncMode = SyncMode.full_refresh,
    state: Optional[List[AirbyteStateMessage]] = None,
    expect_failure: bool = False,
    **config_overrides: Any,
) -> EntrypointOutput:
    cfg = config(**config_overrides)
    cat = catalog(stream, sync_mode)
    source = SourceCodefresh(catalog=cat, config=cfg, state=state)
    return read(
        source,
        cfg,
        cat,
        state,
        expected_outcome=ExpectedOutcome.EXPECT_EXCEPTION if expect_failure else ExpectedOutcome.EXPECT_SUCCESS,
    )


def stream_state(stream: str, value: Mapping[str, Any]) -> List[AirbyteStateMessage]:
    return StateBuilder().with_stream_state(stream, dict(value)).build()


class ApiRequest(HttpRequest):
    """A mocked request to the API that knows its `path` under the API root (HttpRequest keeps its URL to itself)."""

    def __init__(self, path: str, params: Any = None, headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(f"{API}/{path}", query_params=params, headers={"Authorization": API_KEY, **(headers or {})})
        self.path = path


def request(path: str, params: Any = None, headers: Optional[Mapping[str, str]] = None) -> ApiRequest:
    return ApiRequest(path, params, headers)


def any_params(path: str) -> HttpRequest:
    return request(path, ANY_QUERY_PARAMS)


def response(body: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> HttpResponse:
    return HttpResponse(json.dumps(body), status, {"Content-Type": "application/json", **(headers or {})})


def error(status: int, message: str = "error", headers: Optional[Mapping[str, str]] = None) -> HttpResponse:
    return response({"status": status, "code": str(status), "name": "ERROR", "message": message}, status, headers)


def records_of(output: EntrypointOutput) -> List[Dict[str, Any]]:
    return [message.record.data for message in output.records]


def log_lines(output: EntrypointOutput) -> List[str]:
    return [message.log.message for message in output.logs]


def user(account_id: str = ACCOUNT_ID) -> Dict[str, Any]:
    return {
        "_id": "5f00000000000000000000u1",
        "userName": "jane",
        "activeAccountName": "acme",
        "account": [{"name": "other", "_id": "5f0000000000000000000a02"}, {"name": "acme", "_id": account_id}],
    }


@pytest.fixture(autouse=True)
def _no_real_sleep(mocker):
    """Backoff waits are real seconds in a sync; in these mocked tests they only slow the suite down."""
    mocker.patch("time.sleep")


class RecordingHttpMocker(HttpMocker):
    """The CDK's HttpMocker, with `requests`: a requests_mock Mocker started inside it, which records every request
    sent (`requests.request_history`) and answers what HttpMocker cannot declare (a callback, a POST whose body holds
    a random id); the requests it does not answer go on to HttpMocker's answers."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = requests_mock.Mocker(real_http=True)

    def __enter__(self) -> "RecordingHttpMocker":
        super().__enter__()
        self.requests.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.requests.__exit__(*exc_info)
        super().__exit__(*exc_info)


@pytest.fixture
def http_mocker():
    """The CDK's HttpMocker as a pytest fixture, so tests can be parametrized.

    Like the `@HttpMocker()` decorator, it fails a test whose mocked requests were not all sent as declared: the
    decorator's own check (HttpMocker has no other public one) runs once the test is done.
    """
    with RecordingHttpMocker() as mocker:
        yield mocker
    mocker(lambda http_mocker: None)()


# --- helpers of the per-stream tests (unit_tests/test_streams_*.py) -------------------------------------------------


def sent_requests(mocker: RecordingHttpMocker, path: Optional[str] = None) -> List[Dict[str, Any]]:
    """The requests the sync sent, in order: `{"path", "params" (name -> list of values), "headers"}`.

    `path` keeps only the requests to that path under the API root (e.g. "workflow")."""
    from urllib.parse import parse_qs, urlsplit

    sent = []
    for item in mocker.requests.request_history:
        parts = urlsplit(item.url)
        relative = parts.path[len(urlsplit(API).path) + 1 :]
        if path is None or relative == path:
            sent.append({"path": relative, "params": parse_qs(parts.query), "headers": dict(item.headers)})
    return sent


def serialized_messages(output: EntrypointOutput) -> List[str]:
    """Every message of the output as the platform would receive it (JSON lines)."""
    from airbyte_cdk.models import AirbyteMessageSerializer

    return [json.dumps(AirbyteMessageSerializer.dump(message)) for message in output.get_message_iterator()]


def error_traces(output: EntrypointOutput) -> List[Any]:
    """The error traces of the output (their `.message`, `.internal_message`, `.failure_type`)."""
    return [message.trace.error for message in output.errors]


@pytest.fixture
def slept(mocker, _no_real_sleep) -> List[float]:
    """The seconds the sync asked to wait (time.sleep stays instant), with the API budget's clock moved on by each.

    The API budget (pyrate_limiter) reads its own clock: without moving it, a wait that the budget asks for would
    never end in a test where time.sleep returns at once."""
    import time as time_module

    from pyrate_limiter import clocks

    waits: List[float] = []
    real_time = clocks.time
    mocker.patch.object(clocks, "time", lambda: real_time() + sum(waits))
    time_module.sleep.side_effect = lambda seconds: waits.append(float(seconds))
    return waits


@pytest.fixture(scope="session")
def parse_manifest_once():
    """Parses, resolves and validates an unchanged manifest.yaml once per session instead of once per sync.

    Every sync builds the source anew, and reading the manifest (YAML parsing, resolving references and propagating
    $parameters, validating against the CDK's component schema) is most of a mocked sync's time. These steps are pure
    functions of the manifest text: the source gets the same resolved manifest, which it does not modify (a full read
    of every stream leaves it unchanged), and a changed manifest is parsed and validated again.
    """
    import copy
    import hashlib
    from unittest import mock

    from airbyte_cdk.sources.declarative import concurrent_declarative_source, yaml_declarative_source

    def digest(value: Any) -> str:
        if not isinstance(value, (str, bytes)):
            value = json.dumps(value, sort_keys=True, default=str)
        return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()

    parsed: Dict[str, Any] = {}
    resolved: Dict[str, Any] = {}
    validated: List[Any] = []
    load_yaml = yaml_declarative_source.safe_load_yaml
    source_class = concurrent_declarative_source.ConcurrentDeclarativeSource
    resolve = source_class._pre_process_manifest
    validate = concurrent_declarative_source.validate_manifest
    schema = concurrent_declarative_source.get_declarative_component_schema()

    def load_once(stream):
        text = stream.read() if hasattr(stream, "read") else stream
        key = digest(text)
        if key not in parsed:
            parsed[key] = load_yaml(text)
        return copy.deepcopy(parsed[key])

    def resolve_once(self, manifest):
        key = digest(manifest)
        if key not in resolved:
            resolved[key] = resolve(self, manifest)
        return resolved[key]

    def validate_once(manifest, component_schema):
        if not any(manifest is done for done in validated):
            validate(manifest, component_schema)
            validated.append(manifest)

    with (
        mock.patch.object(yaml_declarative_source, "safe_load_yaml", load_once),
        mock.patch.object(concurrent_declarative_source, "get_declarative_component_schema", lambda: schema),
        mock.patch.object(source_class, "_pre_process_manifest", resolve_once),
        mock.patch.object(concurrent_declarative_source, "validate_manifest", validate_once),
    ):
        yield
