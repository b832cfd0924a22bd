"""The GitOps streams' Python parts (Codefresh's GraphQL API, docs/api-notes.md section 11): the documents they send,
read-only by construction; what an answer's `errors` mean; the cursor pages of a slice; and a stream that falls back to
an older query.

- Read-only by construction. Every document is built here, from the parts a stream declares in manifest.yaml (its root
  field, the arguments, the selection): `query SourceCodefresh<Field>(...) { <field>(...) { edges { node { ... } }
  pageInfo { ... } } }`, one root field, which must be on QUERY_FIELDS (else the stream cannot be built), and a
  selection that cannot leave the root field. Never a mutation, never the per-runtime app-proxy (where `sync` and
  `appRollback` are queries with side effects): the URL is the platform's (`GraphQLQuery` below).
- GraphQL answers an error with HTTP 200 (or 400 for a query refused before it ran) and an `errors` list
  (`GraphQLErrorHandler`): a field or argument the server lacks (an older or newer server) skips the stream with one
  line, or falls back to the older query; `Forbidden` (a key without GitOps access) is a config error; anything else
  fails the stream with one sentence. Answers without `errors` go to the REST error policy ($ref'd in the manifest).
- Pages: `pagination: {first, after}` with `first` at most 50, following `pageInfo.hasNextPage`/`endCursor`; a cursor
  that repeats ends the stream with one sentence (`SliceCursorPagination`). The lists Codefresh's SDK reads whole are
  asked without `pagination`, and paged only if `pageInfo` says there is more (`paging: when_more`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import InitVar, dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, MutableMapping, Optional, Set, Union

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.interpolation.interpolated_nested_mapping import InterpolatedNestedMapping
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod, Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy, ErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, Record, StreamSlice, StreamState
from airbyte_cdk.utils.mapping_helpers import get_interpolation_context
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.access import this_read
from source_codefresh.paging import ISSUE_TRACKER
from source_codefresh.responses import response_json, url_without_query
from source_codefresh.spec import default
from source_codefresh.state import dig

logger = logging.getLogger("airbyte")

# The allowlist: the root fields of every document the connector may send (docs/api-notes.md 11.4), all list queries
# that evidenced clients send and that only read. scripts/probe_api.py asks these and a few guessed names.
QUERY_FIELDS = (
    "runtimes",
    "clusters",
    "gitSources",
    "components",
    "pipelines",
    "workflows",
    "gitopsReleases",
    "promotions",
    "productReleases",
)
GRAPHQL_PATH = "/2.0/api/graphql"  # on the API's host, next to /api [GO-GQL `graphqlPath`, TF]
PAGE_SIZE_CAP = 50  # [CLI2] "page limit number, limited to 50"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"\[?[A-Za-z_][A-Za-z0-9_]*!?\]?!?")
# A selection: names, aliases, `... on Type` fragments and braces; no arguments, variables, strings, comments or
# directives.
_SELECTION = re.compile(r"[A-Za-z0-9_.:{}\s]*")
# How servers word a query their schema refuses (graphql-js; graphql-core quotes with '): an older or newer server.
_SCHEMA_LACKS = re.compile(
    r"Cannot query field|Unknown argument|Unknown type|Unknown enum|is not defined by type|of required type|"
    r"argument .* is required|Did you mean",
    re.IGNORECASE,
)
_ROOT_LACKING = re.compile(r"""Cannot query field ["'](\w+)["'] on type ["']Query["']""")


class QueryNotAllowed(ValueError):
    """A document the connector refuses to build (it would not be a read of the allowlist)."""


def _arguments(declared: str) -> List[List[str]]:
    """`"runtime: String!, filters: X"` as [[name, type], ...], each checked."""
    pairs = []
    for part in (p.strip() for p in declared.split(",") if p.strip()):
        name, _, kind = (s.strip() for s in part.partition(":"))
        if not _NAME.fullmatch(name) or not _TYPE.fullmatch(kind):
            raise QueryNotAllowed(f"'{part}' is not an argument declaration (name: Type)")
        pairs.append([name, kind])
    return pairs


def document(root_field: str, selection: str, arguments: str = "", paged: bool = True) -> str:
    """The one document a stream sends: a query of `root_field` (on QUERY_FIELDS) with the declared `arguments` (and
    `pagination` when `paged`), selecting `selection` in each node of the slice and its page info."""
    if root_field not in QUERY_FIELDS:
        raise QueryNotAllowed(f"'{root_field}' is not on the connector's list of GraphQL queries ({QUERY_FIELDS})")
    text = " ".join(selection.split())
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    if not text or depth != 0 or not _SELECTION.fullmatch(text):
        raise QueryNotAllowed(f"the selection of '{root_field}' is not a plain selection of fields: {text[:80]}")
    pairs = _arguments(arguments) + ([["pagination", "SlicePaginationArgs"]] if paged else [])
    declared = ", ".join(f"${name}: {kind}" for name, kind in pairs)
    passed = ", ".join(f"{name}: ${name}" for name, _ in pairs)
    operation = "SourceCodefresh" + root_field[0].upper() + root_field[1:]
    return (
        f"query {operation}{f'({declared})' if pairs else ''} {{ {root_field}{f'({passed})' if pairs else ''} "
        f"{{ edges {{ node {{ {text} }} }} pageInfo {{ endCursor hasNextPage }} }} }}"
    )


def graphql_url(config: Mapping[str, Any]) -> str:
    """The GraphQL API of the configured installation: `gitops_graphql_url`, else `<host>/2.0/api/graphql` next to the
    REST root `<host>/api` (the manifest's requester derives the same; unit_tests check both)."""
    override = str(config.get("gitops_graphql_url") or "").strip()
    if override:
        return override
    root = str(config.get("api_root") or config.get("base_url") or default("base_url")).strip().rstrip("/")
    return (root[: -len("/api")] if root.endswith("/api") else root) + GRAPHQL_PATH


# ---------------------------------------------------------------------------------------------------------------------
# The requester
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class GraphQLQuery(Requester):
    """The stream's HttpRequester (the URL, POST, the key, the error policy, the variables it declares in
    `request_body_json`), with the stream's document and `variables` (interpolated per request: `stream_partition`,
    `next_page_token`) added to every request body; the paginator's `pagination` joins the variables.

    `paging`: `always` declares `pagination` on every request (the paginator sends `first` and `after`);
    `when_more` sends none on the first request and declares it only on the pages after it, for the lists Codefresh's
    SDK asks without `pagination` (a server may not take the argument there: docs/api-notes.md 11.3)."""

    requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    root_field: str = ""
    selection: str = ""
    arguments: str = ""
    paging: str = "always"
    variables: Optional[Mapping[str, Any]] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._variables = InterpolatedNestedMapping(mapping=dict(self.variables or {}), parameters=parameters)
        if self.paging not in ("always", "when_more"):
            raise QueryNotAllowed(f"paging '{self.paging}' is not always or when_more")
        # Both documents are built now: a stream whose query is not on the allowlist cannot be built at all.
        self._documents = {
            paged: document(self.root_field, self.selection, self.arguments, paged or self.paging == "always")
            for paged in (False, True)
        }
        self._stream = str(parameters.get("reading_for") or parameters.get("name") or "")
        self._checked_url = False

    def document(self, next_page_token: Optional[Mapping[str, Any]]) -> str:
        return self._documents[bool(next_page_token and next_page_token.get("next_page_token"))]

    def send_request(
        self,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
        path: Optional[str] = None,
        request_headers: Optional[Mapping[str, Any]] = None,
        request_params: Optional[Mapping[str, Any]] = None,
        request_body_data: Optional[Union[Mapping[str, Any], str]] = None,
        request_body_json: Optional[Mapping[str, Any]] = None,
        log_formatter: Optional[Callable[[requests.Response], Any]] = None,
    ) -> Optional[requests.Response]:
        if not self._checked_url:
            self._check_url()
        body = self._body(stream_slice, next_page_token, request_body_json)
        return self.requester.send_request(
            stream_state=stream_state,
            stream_slice=stream_slice,
            next_page_token=next_page_token,
            path=path,
            request_headers=request_headers,
            request_params=request_params,
            request_body_data=request_body_data,
            request_body_json=body,
            log_formatter=log_formatter,
        )

    def _body(
        self,
        stream_slice: Optional[StreamSlice],
        next_page_token: Optional[Mapping[str, Any]],
        given: Optional[Mapping[str, Any]],
    ) -> Dict[str, Any]:
        context = get_interpolation_context(stream_slice=stream_slice, next_page_token=next_page_token)
        variables = dict(self._variables.eval(self.config, **context) or {})
        variables.update((given or {}).get("variables") or {})  # the paginator's `pagination`
        return {**(given or {}), "query": self.document(next_page_token), "variables": variables}

    def _check_url(self) -> None:
        """gitops_graphql_url: a plain https URL (the URL policy of every request, transport.py, applies on top)."""
        url = str(self.config.get("gitops_graphql_url") or "").strip()
        if url and not re.fullmatch(r"https?://[^/@?#\s]+(/[^?#\s]*)?", url):
            message = (
                f"Stream '{self._stream}': gitops_graphql_url is not a plain https URL without credentials, '?' or "
                f"'#': use https://<your-host>{GRAPHQL_PATH}, or leave it empty to use the one next to base_url."
            )
            raise AirbyteTracedException(
                message=message, internal_message=message, failure_type=FailureType.config_error
            )
        self._checked_url = True

    # -- the rest is the wrapped requester's ---------------------------------------------------------------------
    def get_authenticator(self) -> DeclarativeAuthenticator:
        return self.requester.get_authenticator()

    def get_url(self, **kwargs: Any) -> str:
        return self.requester.get_url(**kwargs)

    def get_url_base(self, **kwargs: Any) -> str:
        return self.requester.get_url_base(**kwargs)

    def get_path(self, **kwargs: Any) -> str:
        return self.requester.get_path(**kwargs)

    def get_method(self) -> HttpMethod:
        return self.requester.get_method()

    def get_request_params(self, **kwargs: Any) -> MutableMapping[str, Any]:
        return self.requester.get_request_params(**kwargs)

    def get_request_headers(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.requester.get_request_headers(**kwargs)

    def get_request_body_data(self, **kwargs: Any) -> Union[Mapping[str, Any], str]:
        return self.requester.get_request_body_data(**kwargs)

    def get_request_body_json(self, **kwargs: Any) -> Mapping[str, Any]:
        given = self.requester.get_request_body_json(**kwargs)
        return self._body(kwargs.get("stream_slice"), kwargs.get("next_page_token"), given)

    def __getattr__(self, name: str) -> Any:
        # What the CDK reads off an HttpRequester (its name, error handler, ...) is the wrapped one's.
        if name == "requester":
            raise AttributeError(name)
        return getattr(self.requester, name)


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------
class UseFallback(Exception):
    """The stream's query cannot be read on this server, and the stream declares an older way (FallbackRetriever)."""


def _messages(errors: Any) -> List[str]:
    found = [str(e.get("message") or "") if isinstance(e, Mapping) else str(e) for e in errors or []]
    return [" ".join(m.split())[:300] for m in found if m.strip()] or ["(an error without a message)"]


def _forbidden(errors: Any) -> bool:
    """[STEPS-GQL]: `{"message": "Forbidden", "extensions": 403}`; Apollo's code FORBIDDEN; an HTTP 403 status."""
    for error in errors or []:
        if not isinstance(error, Mapping):
            continue
        extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, Mapping) else extensions
        status = extensions.get("status") if isinstance(extensions, Mapping) else None
        if str(error.get("message", "")).strip().lower() == "forbidden" or str(code).upper() in ("403", "FORBIDDEN"):
            return True
        if str(status) == "403":
            return True
    return False


@dataclass
class GraphQLErrorHandler(ErrorHandler):
    """What an answer's GraphQL `errors` mean for the stream; an answer without them goes to `rest_policy` (the REST
    error policy: 401, 403, 429, 5xx, a body that is not JSON), unchanged.

    - A query the server refused before running it (no `data`; HTTP 400 or 200) because its schema lacks a field,
      argument or type of it: the stream is skipped with one line naming what the server lacks (an older or newer
      server; the other streams go on), or, with `fallback: when_refused`, the stream's older query is read instead.
      Any other refusal (syntax, variables) fails the stream: the connector's query is wrong, which is a bug.
    - `Forbidden` (a key without GitOps access): a config error. Skipping would end the sync "successfully" with the
      GitOps tables emptied (they are full refresh), so the user is told instead.
    - Any other error of the root field (its value `null`): fails the stream with one sentence quoting it; with
      `fallback: when_failed` (gitopsReleases without an application filter, docs/api-notes.md 11.8), the stream's
      fallback is read instead.
    - An error of a nested field only (the root field answered): the records are kept as answered (that field `null`)
      and the stream says so once."""

    rest_policy: ErrorHandler
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    fallback: str = "{{ parameters.get('graphql_fallback') or '' }}"  # "" | when_refused | when_failed

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.fallback = str(InterpolatedString.create(self.fallback, parameters=parameters).eval(self.config) or "")
        self._stream = str(parameters.get("reading_for") or parameters.get("name") or "")
        self._root = str(parameters.get("root_field") or "")
        self._told: Set[str] = set()
        self._lock = threading.Lock()
        self._access = this_read()

    # The retries are the REST policy's.
    @property
    def max_retries(self) -> Optional[int]:
        return self.rest_policy.max_retries

    @property
    def max_time(self) -> Optional[int]:
        return self.rest_policy.max_time

    @property
    def backoff_strategies(self) -> Optional[List[BackoffStrategy]]:
        return getattr(self.rest_policy, "backoff_strategies", None)

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        response = response_or_exception
        if isinstance(response, requests.Response) and response.status_code == 404:
            return self._not_found(response)
        if not isinstance(response, requests.Response) or response.status_code not in (200, 400):
            return self.rest_policy.interpret_response(response)
        try:
            body = response_json(response)
        except orjson.JSONDecodeError:
            return self.rest_policy.interpret_response(response)  # not JSON: the REST policy says what that means
        if not isinstance(body, Mapping) or not body.get("errors"):
            if response.status_code == 200 and not (
                isinstance(body, Mapping) and isinstance(body.get("data"), Mapping)
            ):
                return self._fail(
                    f"Codefresh answered {_where(response)} with JSON that is not a GraphQL answer (neither `data` "
                    f"nor `errors`), so stream '{self._stream}' cannot read it: check that base_url (or "
                    "gitops_graphql_url) is the Codefresh API and that no proxy is in between.",
                    FailureType.config_error,
                )
            return self.rest_policy.interpret_response(response)
        errors = body["errors"]
        said = "; ".join(_messages(errors)[:3])
        data = body.get("data")
        if _forbidden(errors):
            return self._fail(
                f"Stream '{self._stream}': Codefresh refused this API key access to GitOps data (the GraphQL API "
                f"answered '{said}' for {self._root}): ask your Codefresh administrator to give the key's user access "
                "to GitOps (runtimes, applications), or remove the GitOps streams from the connection.",
                FailureType.config_error,
            )
        if not isinstance(data, Mapping):  # refused before anything ran
            if not any(_SCHEMA_LACKS.search(m) for m in _messages(errors)):
                return self._fail(
                    f"Stream '{self._stream}': Codefresh's GraphQL API refused the connector's {self._root} query "
                    f"({said}); this is a bug of the connector or a change of the API: please report it at "
                    f"{ISSUE_TRACKER} with this message.",
                    FailureType.system_error,
                )
            if self.fallback == "when_refused" and any(
                m.group(1) == self._root for m in map(_ROOT_LACKING.search, _messages(errors)) if m
            ):
                raise UseFallback(f"this Codefresh server has no '{self._root}' query ({said})")
            return self._skip(
                f"Skipping stream '{self._stream}': this Codefresh server's GitOps API lacks what the stream reads "
                f"({said}); it is older or newer than the API the connector knows, and the other streams are synced."
            )
        if data.get(self._root) is None:  # the root field failed
            if self.fallback == "when_failed":
                raise UseFallback(f"Codefresh answered '{said}' to the account-wide {self._root} query")
            return self._fail(
                f"Stream '{self._stream}': Codefresh's GitOps API answered {self._root} with an error ({said}): run "
                f"the sync again, and if it fails the same way, report it at {ISSUE_TRACKER} with this message.",
                FailureType.system_error,
            )
        if self._first("partial"):
            logger.warning(
                f"Stream '{self._stream}': Codefresh's GitOps API answered some fields of {self._root} with an "
                f"error ({said}); those fields are empty (null) in the records."
            )
        return ErrorResolution(ResponseAction.SUCCESS)

    def _not_found(self, response: requests.Response) -> ErrorResolution:
        if str(self.config.get("gitops_graphql_url") or "").strip():
            return self._fail(
                f"Codefresh has no GraphQL API at {_where(response)} (HTTP 404): check gitops_graphql_url, or leave it "
                "empty to use the one next to base_url.",
                FailureType.config_error,
            )
        # An installation without Codefresh GitOps: nothing to read, which is not an error of the sync.
        return self._skip(
            f"Skipping stream '{self._stream}': Codefresh has no GitOps GraphQL API at {_where(response)} (HTTP 404), "
            "so this installation serves no GitOps data; if it serves the API elsewhere, set gitops_graphql_url."
        )

    def _first(self, what: str) -> bool:
        with self._lock:
            first = what not in self._told
            self._told.add(what)
            return first

    def _skip(self, message: str) -> ErrorResolution:
        # Once per stream and sync (a stream read per runtime meets the same answer once per runtime).
        if not self._access.mark_skipped(self._stream):
            return ErrorResolution(ResponseAction.SUCCESS)
        return ErrorResolution(ResponseAction.IGNORE, FailureType.config_error, message)

    @staticmethod
    def _fail(message: str, failure: FailureType) -> ErrorResolution:
        raise AirbyteTracedException(message=message, internal_message=message, failure_type=failure)


def _where(response: requests.Response) -> str:
    return f"{response.request.method if response.request else 'POST'} {url_without_query(response.url)}"


# ---------------------------------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class SliceCursorPagination(PaginationStrategy):
    """The next page of a slice: `after` = `pageInfo.endCursor` while `pageInfo.hasNextPage` [GO-GQL cluster.go].

    A cursor the listing already gave (the server would answer a page it already gave, for ever) ends the stream with
    one sentence; so does "more follows" without a cursor. A listing is a stream slice read from its first page; the
    cursors seen are kept per listing while it is read (the strategy is shared by a stream's slices)."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Optional[Union[int, str]] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._root = str(parameters.get("root_field") or "")
        self._stream = str(parameters.get("reading_for") or parameters.get("name") or "")
        size = InterpolatedString.create(str(self.page_size), parameters=parameters).eval(self.config)
        self._page_size = None if self.page_size is None else min(int(size), PAGE_SIZE_CAP)
        self._listings: "OrderedDict[str, Set[str]]" = OrderedDict()
        self._lock = threading.Lock()

    @property
    def initial_token(self) -> Optional[Any]:
        return None

    def get_page_size(self) -> Optional[int]:
        return self._page_size

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any] = None,
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Any]:
        try:
            body = response_json(response)
        except ValueError:
            return None
        data = body.get("data") if isinstance(body, Mapping) else None
        found = data.get(self._root) if isinstance(data, Mapping) else None
        info = found.get("pageInfo") if isinstance(found, Mapping) else None
        listing = orjson.dumps(
            dict(stream_slice.partition) if stream_slice is not None else {}, option=orjson.OPT_SORT_KEYS
        ).decode()
        with self._lock:
            if last_page_token_value is None:  # the first page: a new listing
                self._listings.pop(listing, None)
            if not isinstance(info, Mapping) or not info.get("hasNextPage"):
                self._listings.pop(listing, None)
                return None
            cursor = info.get("endCursor")
            seen = self._listings.setdefault(listing, set())
            self._listings.move_to_end(listing)
            while len(self._listings) > 1000:
                self._listings.popitem(last=False)
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                self._listings.pop(listing, None)
                raise self._loop(response, len(seen) + 1, cursor)
            seen.add(cursor)
        return cursor

    def _loop(self, response: requests.Response, page: int, cursor: Any) -> AirbyteTracedException:
        what = "gave no cursor to go on from" if not cursor else "gave a cursor it had already given"
        message = (
            f"Stream '{self._stream}': Codefresh answered page {page} of {self._root} ({_where(response)}) saying more "
            f"follows, but {what}, so the listing would never end: the stream stopped there; please report this at "
            f"{ISSUE_TRACKER}."
        )
        return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.system_error)


# ---------------------------------------------------------------------------------------------------------------------
# Fallback
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class FallbackRetriever(Retriever):
    """The stream's `retriever`; when its query cannot be read on this server (UseFallback, raised by the error handler
    on its first answer), `fallback` is read instead, once per partition of `fallback_partitions` (products,
    applications: from the config). Without any partition, `without_partitions` says why (one sentence), as a skip
    line or, with `without_partitions_fails`, as a config error."""

    retriever: Retriever
    fallback: Retriever
    fallback_partitions: PartitionRouter
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    falling_back: str = ""
    without_partitions: str = ""
    without_partitions_fails: bool = False
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._parameters = parameters

    def _say(self, template: str, reason: str) -> str:
        return str(InterpolatedString.create(template, parameters=self._parameters).eval(self.config, reason=reason))

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        emitted = False
        try:
            for record in self.retriever.read_records(records_schema, stream_slice):
                emitted = True
                yield record
            return
        except UseFallback as why:
            if emitted:  # the fallback only replaces a listing that never started
                message = f"Stream '{self._parameters.get('name')}': {why} in the middle of its listing."
                raise AirbyteTracedException(message=message, internal_message=message) from why
            reason = str(why)
        partitions = list(self.fallback_partitions.stream_slices())
        if not partitions:
            message = self._say(self.without_partitions, reason)
            if self.without_partitions_fails:
                raise AirbyteTracedException(
                    message=message, internal_message=message, failure_type=FailureType.config_error
                )
            logger.warning(message)
            return
        logger.info(self._say(self.falling_back, reason))
        for partition in partitions:
            yield from self.fallback.read_records(records_schema, _within(partition, stream_slice))


def _within(partition: StreamSlice, stream_slice: Optional[StreamSlice]) -> StreamSlice:
    """A fallback partition (a product, an application) inside the stream's slice: its window of an incremental
    stream stays the records' slice, which the cursor files them under, and the query's date filter."""
    if stream_slice is None:
        return partition
    return StreamSlice(
        partition={**stream_slice.partition, **partition.partition},
        cursor_slice=stream_slice.cursor_slice,
        extra_fields={**stream_slice.extra_fields, **partition.extra_fields},
    )


@dataclass
class NodesOfListedRetriever(Retriever):
    """gitops_workflow_nodes: one record per item at `nodes_path` of each record of `listing` (the workflows listing,
    read in the stream's slice as gitops_workflows reads it), with `keys` (record field: dotted path in the listed
    record) added. No request of its own. The stream's cursor filters the listing itself (the CDK hands the record
    filter to the selector of a retriever nested in a custom one), so the nodes of a workflow are read again exactly
    while the workflow is followed; a workflow without nodes is followed all the same."""

    listing: Retriever
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    nodes_path: str = "status.nodes"
    keys: Optional[Mapping[str, str]] = None
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._keys = dict(self.keys or {})

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        for listed in self.listing.read_records({}, stream_slice):
            if not isinstance(listed, Mapping):  # a message of the listing's (a log line): pass it on
                yield listed
                continue
            added = {field: dig(listed, path) for field, path in self._keys.items()}
            for node in dig(listed, self.nodes_path) or []:
                if isinstance(node, Mapping):
                    yield {**node, **added}
