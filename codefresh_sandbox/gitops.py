"""The sandbox's GitOps endpoint, `POST /2.0/api/graphql`: a real GraphQL engine (graphql-core) over the schema of
gitops.graphql, answering from gitops_data.GitopsData.

Because the engine validates every query against the schema, a query for a field the schema lacks gets the engine's
own error (`Cannot query field "x" on type "Y".`, with graphql-js's double quotes, as Codefresh's server answers it:
graphql-core quotes names with single quotes, so the messages are requoted), and an answer holds only the selected
fields. The schema has no mutation type, so every mutation is rejected by validation; every operation is counted by
type (`SandboxServer.stats()["graphql"]`) before anything else happens to it.

Imported on the first GraphQL request only (server.py), so that the REST sandbox runs without graphql-core (the
runtime lock does not have it).
"""

from __future__ import annotations

import json
import re
from base64 import urlsafe_b64decode, urlsafe_b64encode
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.language import FieldNode
from graphql.validation import NoSchemaIntrospectionCustomRule

from .common import SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY, SANDBOX_RESTRICTED_API_KEY, Response, dumps, parse_bound

SCHEMA_FILE = Path(__file__).with_name("gitops.graphql")
# Lists that the evidenced clients ask without `pagination` [GO-GQL]: under gitops_list_pagination=evidenced_only they
# take no such argument and answer the whole list; under every_list they take one and answer DEFAULT_FIRST without it.
UNPAGED_LISTS = ("runtimes", "gitSources", "components", "pipelines", "workflows")
DEFAULT_FIRST = 20  # a page without `first`: the CLI's own default page ([CLI2] --page-limit 20)
PAGE_CAP = 50  # [CLI2] "page limit number, limited to 50"
# The sandbox's words (no source shows Codefresh's): a larger page under gitops_page_cap=50, and the one error of
# gitops_releases_filter=required.
CAP_MESSAGE = 'Pagination "{arg}" is limited to 50, got {value}.'
APP_REQUIRED_MESSAGE = "gitopsReleases needs an application: set filters.runtime, filters.namespace and filters.name."
# [DOCS-GITOPS troubleshooting-runtimes.md]: `GraphQL Error (Code: 401): {"response": {"error": "Unauthorized:
# Invalid token.", "status": 401 ...` (graphql-request's rendering of a 401 whose body is that `error`).
UNAUTHORIZED = {"error": "Unauthorized: Invalid token."}
# [STEPS-GQL argocd_sync.py `application_exist`]: a GitOps entity the key may not read is the GraphQL error
# {"message": "Forbidden", "extensions": 403}.
FORBIDDEN_MESSAGE = "Forbidden"
QUOTED = re.compile(r"'([^'\s]*)'")  # a name graphql-core quotes with ' where graphql-js (Codefresh's engine) uses "


class Forbidden(Exception):
    """Raised by every root field under gitops_access=forbidden."""

    def __init__(self) -> None:
        super().__init__(FORBIDDEN_MESSAGE)


@lru_cache(maxsize=None)
def schema_for(schema_reading: str, list_pagination: str) -> GraphQLSchema:
    """The schema of gitops.graphql, less the root field and arguments the readings take away."""
    base = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    fields = {}
    for name, field in base.query_type.fields.items():  # type: ignore[union-attr]
        if name == "promotions" and schema_reading == "before_promotions":
            continue  # servers before v1.3808.0 [CLI2]
        args = dict(field.args)
        if name in UNPAGED_LISTS and list_pagination == "evidenced_only":
            args.pop("pagination")
        fields[name] = GraphQLField(field.type, args)
    types = [t for n, t in base.type_map.items() if n != "Query" and not n.startswith("__")]
    return GraphQLSchema(query=GraphQLObjectType("Query", fields), types=types)


def error_json(err: GraphQLError) -> Dict[str, Any]:
    out = dict(err.formatted)
    out["message"] = QUOTED.sub(r'"\1"', out["message"])
    if isinstance(err.original_error, Forbidden):
        out["extensions"] = 403
    return out


class Endpoint:
    """One sandbox's GraphQL endpoint: its schema (per the readings), resolvers and answers."""

    def __init__(self, app: Any):
        self.app = app
        self.cfg = app.config
        self.data = app.data
        self.gitops = app.data.gitops
        self.schema = schema_for(self.cfg.gitops_schema, self.cfg.gitops_list_pagination)
        self.rules = list(specified_rules)
        if self.cfg.gitops_introspection == "disabled":
            self.rules.append(NoSchemaIntrospectionCustomRule)
        resolvers: Dict[str, Callable[..., Any]] = {
            "runtimes": self.runtimes,
            "runtime": self.runtime,
            "clusters": self.clusters,
            "gitSources": self.git_sources,
            "components": self.components,
            "pipelines": self.pipelines,
            "pipeline": self.pipeline,
            "workflows": self.workflows,
            "workflow": self.workflow,
            "application": self.application,
            "gitopsReleases": self.releases,
            "promotions": self.promotions,
            "productReleases": self.product_releases,
        }
        self.root = {name: self._guarded(fn) for name, fn in resolvers.items()}

    # ---------------------------------------------------------------------------------------------------------------
    # HTTP
    # ---------------------------------------------------------------------------------------------------------------
    def serve(self, method: str, authorization: Optional[str], body: bytes) -> Response:
        key = authorization or ""
        key = key[len("Bearer ") :] if key.startswith("Bearer ") else key  # official code sends both forms [HUB, ENR]
        if key == SANDBOX_RESTRICTED_API_KEY:  # restricted for unusual activity: 403 to all (rate-limiter docs)
            message = "Forbidden: access for this API key has been restricted due to unusual activity"
            return Response(403, dumps({"status": 403, "code": "1003", "name": "FORBIDDEN", "message": message}))
        if key not in (SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY):
            return Response(401, dumps(UNAUTHORIZED))
        if method != "POST":
            return self._answer(405, [GraphQLError("GraphQL requests to the sandbox are POSTs.")])
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._answer(400, [GraphQLError('The body must be a JSON object with a "query" string.')])
        variables, operation = payload.get("variables"), payload.get("operationName")
        if not isinstance(variables, (dict, type(None))) or not isinstance(operation, (str, type(None))):
            return self._answer(400, [GraphQLError('"variables" must be an object, "operationName" a string.')])
        try:
            document = parse(payload["query"])
        except GraphQLError as err:
            self.app.count_graphql(["unparsable"], [])
            return self._answer(self._invalid_status, [err])
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        executed = get_operation_ast(document, operation)
        selections = executed.selection_set.selections if executed is not None else ()
        fields = [s.name.value for s in selections if isinstance(s, FieldNode)]
        self.app.count_graphql([op.operation.value for op in operations], [])
        errors = validate(self.schema, document, self.rules)
        if errors:
            return self._answer(self._invalid_status, errors)
        with self.data.lock:
            result = execute(self.schema, document, self.root, variable_values=variables, operation_name=operation)
        if result.data is None:  # a request error (variables, operation name): nothing was executed
            return self._answer(self._invalid_status, list(result.errors or ()))
        self.app.count_graphql([], fields)
        return self._answer(200, list(result.errors or ()), result.data)

    @property
    def _invalid_status(self) -> int:
        """The status of an answer to a query the server refuses before executing it (gitops_invalid_query_status)."""
        return int(self.cfg.gitops_invalid_query_status)

    def _answer(self, status: int, errors: Sequence[GraphQLError], data: Any = None) -> Response:
        body: Dict[str, Any] = {}
        if errors:
            body["errors"] = [error_json(e) for e in errors]
        if data is not None:
            body["data"] = data
        return Response(status, dumps(body))

    # ---------------------------------------------------------------------------------------------------------------
    # paging
    # ---------------------------------------------------------------------------------------------------------------
    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def resolve(info: Any, **args: Any) -> Any:
            if self.cfg.gitops_access == "forbidden":
                raise Forbidden()
            return fn(**args)

        return resolve

    def _page(
        self,
        tag: str,
        items: List[Dict],
        key: Callable[[Dict], str],
        pagination: Optional[Dict[str, Any]],
        default_first: Optional[int] = DEFAULT_FIRST,
        node: Callable[[Dict], Dict] = lambda item: item,
    ) -> Dict[str, Any]:
        """A slice {edges {node, cursor}, pageInfo} of `items` (already in order). Cursors are opaque: the list's tag
        and the node's key, so a page goes on after its node however many nodes arrived before it."""
        p = pagination or {}
        first, last = p.get("first"), p.get("last")
        for arg, value in (("first", first), ("last", last)):
            if value is not None and value < 0:
                raise GraphQLError(f'Pagination "{arg}" must not be negative, got {value}.')
            if value is not None and self.cfg.gitops_page_cap == "50" and value > PAGE_CAP:
                raise GraphQLError(CAP_MESSAGE.format(arg=arg, value=value))
        keys = [key(item) for item in items]
        lo, hi = 0, len(items)
        if p.get("after"):
            lo = self._position(tag, p["after"], keys) + 1
        if p.get("before"):
            hi = self._position(tag, p["before"], keys)
        window = list(range(lo, max(lo, hi)))
        if first is None and last is None:
            first = default_first
        if first is not None:
            window = window[:first]
        if last is not None:
            window = window[len(window) - last :] if last else []
        following = window[-1] + 1 if window else hi
        cursors = [self._cursor(tag, keys[i]) for i in window]
        return {
            "edges": [{"node": node(items[i]), "cursor": c} for i, c in zip(window, cursors, strict=True)],
            "pageInfo": {
                "startCursor": cursors[0] if cursors else None,
                "endCursor": cursors[-1] if cursors else None,
                "hasNextPage": following < len(items),
                "hasPrevPage": (window[0] if window else lo) > 0,
            },
        }

    @staticmethod
    def _cursor(tag: str, key: str) -> str:
        return urlsafe_b64encode(f"{tag}|{key}".encode()).decode()

    @staticmethod
    def _position(tag: str, cursor: str, keys: List[str]) -> int:
        try:
            got_tag, key = urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
            if got_tag == tag:
                return keys.index(key)
        except ValueError:
            pass
        raise GraphQLError(f"Invalid cursor: {cursor}")

    def _date(self, filters: Dict[str, Any], name: str, upper: bool) -> Optional[int]:
        """A date filter's bound in epoch ms (a bad one is an error), or None under gitops_date_filters=ignored."""
        bound = _bound(filters.get(name), upper)
        return None if self.cfg.gitops_date_filters == "ignored" else bound

    def _unpaged(self, pagination: Optional[Dict[str, Any]]) -> Optional[int]:
        """The default page of a list [GO-GQL] asks without `pagination`: everything, unless every list pages."""
        return DEFAULT_FIRST if self.cfg.gitops_list_pagination == "every_list" else None

    # ---------------------------------------------------------------------------------------------------------------
    # resolvers (the arguments are the schema's)
    # ---------------------------------------------------------------------------------------------------------------
    def runtimes(self, pagination: Any = None) -> Dict:
        items = self.gitops.runtimes
        return self._page("runtimes", items, lambda r: r["metadata"]["name"], pagination, self._unpaged(pagination))

    def runtime(self, name: str) -> Optional[Dict]:
        return next((r for r in self.gitops.runtimes if r["metadata"]["name"] == name), None)

    def clusters(self, runtime: Optional[str] = None, pagination: Any = None) -> Dict:
        items = [c for c in self.gitops.clusters if not runtime or c["metadata"]["runtime"] == runtime]
        return self._page("clusters", items, lambda c: c["metadata"]["uid"], pagination)

    def git_sources(self, runtime: Optional[str] = None, pagination: Any = None) -> Dict:
        items = [s for s in self.gitops.git_sources if not runtime or s["metadata"]["runtime"] == runtime]
        return self._page("gitSources", items, lambda s: s["metadata"]["uid"], pagination, self._unpaged(pagination))

    def components(self, runtime: str, pagination: Any = None) -> Dict:
        items = [c for c in self.gitops.components if c["metadata"]["runtime"] == runtime]
        return self._page("components", items, lambda c: c["metadata"]["uid"], pagination, self._unpaged(pagination))

    def pipelines(self, filters: Any = None, pagination: Any = None) -> Dict:
        f = filters or {}
        items = [
            p
            for p in self.gitops.pipelines
            if all(f.get(k) in (None, p["metadata"][k]) for k in ("runtime", "namespace", "name"))
            and f.get("project") in [None, *p["projects"]]
        ]
        return self._page("pipelines", items, lambda p: p["metadata"]["uid"], pagination, self._unpaged(pagination))

    def pipeline(self, name: str, runtime: str, namespace: Optional[str] = None) -> Optional[Dict]:
        return next(
            (
                p
                for p in self.gitops.pipelines
                if (p["metadata"]["name"], p["metadata"]["runtime"]) == (name, runtime)
                and namespace in (None, p["metadata"]["namespace"])
            ),
            None,
        )

    def workflows(self, filters: Any = None, pagination: Any = None) -> Dict:
        f = filters or {}
        start, end = self._date(f, "startDateFrom", False), self._date(f, "startDateTo", True)
        items = [
            w
            for w in reversed(self.gitops.workflows)  # newest first
            if all(f.get(k) in (None, w["metadata"][k]) for k in ("runtime", "namespace"))
            and f.get("project") in [None, *w["projects"]]
            and (not f.get("statuses") or w["status"]["phase"] in f["statuses"])
            and (start is None or w["_created_ms"] >= start)
            and (end is None or w["_created_ms"] <= end)
        ]
        return self._page("workflows", items, lambda w: w["metadata"]["uid"], pagination, self._unpaged(pagination))

    def workflow(self, uid: str) -> Optional[Dict]:
        return next((w for w in self.gitops.workflows if w["metadata"]["uid"] == uid), None)

    def application(self, runtime: str, name: str, namespace: Optional[str] = None) -> Optional[Dict]:
        return self.gitops.application_view(runtime, name, namespace)

    def releases(self, pagination: Any = None, filters: Any = None, sort: Any = None) -> Dict:
        f = filters or {}
        if self.cfg.gitops_releases_filter == "required" and not f.get("name"):
            raise GraphQLError(APP_REQUIRED_MESSAGE)
        start = max(self._date(f, k, False) or 0 for k in ("syncStartDateFrom", "startDate"))
        ends = [b for b in (self._date(f, "syncStartDateTo", True), self._date(f, "endDate", True)) if b is not None]
        end = min(ends) if ends else None
        wanted = {
            "committers": set(f.get("committers") or []) | ({f["committer"]} if f.get("committer") else set()),
            "prs": set(f.get("prKeys") or []) | ({f["prKey"]} if f.get("prKey") else set()),
            "issues": set(f.get("issueKeys") or []) | ({f["issueKey"]} if f.get("issueKey") else set()),
        }

        def keep(r: Dict) -> bool:
            m, a = r["applicationMetadata"], r["application"]
            return (
                all(f.get(k) in (None, m[k]) for k in ("runtime", "name", "namespace"))
                and f.get("historyId") in (None, r["historyId"])
                and start <= r["_created_ms"]
                and (end is None or r["_created_ms"] <= end)
                and (not wanted["committers"] or bool(wanted["committers"] & {c["userName"] for c in a["committers"]}))
                and (not wanted["prs"] or bool(wanted["prs"] & {x["key"] for x in a["prs"]}))
                and (not wanted["issues"] or bool(wanted["issues"] & {x["key"] for x in a["issues"]}))
            )

        field, order = (sort or {}).get("field", "createdAt"), (sort or {}).get("order", "desc")
        sort_key: Callable[[Dict], Any] = {
            "createdAt": lambda r: (r["_created_ms"], r["_key"]),
            "historyId": lambda r: (r["historyId"], r["_created_ms"], r["_key"]),
            "healthStatus": lambda r: (r["application"]["status"]["healthStatus"] or "", r["_created_ms"], r["_key"]),
            "syncStatus": lambda r: (r["application"]["status"]["syncStatus"], r["_created_ms"], r["_key"]),
        }[field]
        items = sorted(filter(keep, self.gitops.releases), key=sort_key, reverse=order == "desc")
        return self._page(f"gitopsReleases:{field}:{order}", items, lambda r: r["_key"], pagination)

    def _promotion_items(self, f: Dict[str, Any], products: Optional[List[str]]) -> List[Dict]:
        start, end = self._date(f, "startDate", False), self._date(f, "endDate", True)
        return [
            p
            for p in reversed(self.gitops.promotions)  # newest first
            if (not products or p["productName"] in products)
            and (not f.get("statuses") or p["status"] in f["statuses"])
            and (not f.get("promotionFlows") or p["promotionFlowName"] in f["promotionFlows"])
            and (start is None or p["_created_ms"] >= start)
            and (end is None or p["_created_ms"] <= end)
        ]

    def promotions(self, filters: Any = None, pagination: Any = None) -> Dict:
        f = filters or {}
        items = self._promotion_items(f, f.get("productNames"))
        view = self.gitops
        return self._page(
            "promotions",
            items,
            lambda p: p["id"],
            pagination,
            node=lambda p: view.product_release_view(p) if p["_legacy"] else view.promotion_view(p),
        )

    def product_releases(self, productName: str, filters: Any, pagination: Any = None) -> Dict:  # the schema's name
        items = self._promotion_items(filters or {}, [productName])
        return self._page(
            "productReleases", items, lambda p: p["id"], pagination, node=self.gitops.product_release_view
        )


def _bound(text: Optional[str], upper: bool) -> Optional[int]:
    """A date filter (a date covers its whole UTC day, a date-time is exact) in epoch ms; a bad one is an error."""
    if not text:
        return None
    try:
        return parse_bound(text, upper)
    except ValueError:
        raise GraphQLError(f"Invalid date: {text}") from None
