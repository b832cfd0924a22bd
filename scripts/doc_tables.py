"""The tables of streams and of config fields in the docs, generated from manifest.yaml so that they cannot drift.

    .venv/bin/python scripts/doc_tables.py            # print every table
    .venv/bin/python scripts/doc_tables.py --write    # replace them in docs/codefresh.md and CONTRIBUTING.md

One home per fact: the streams (request, paging, keys, cursor, scope, parent) are read from the resolved manifest
(references inlined), the config fields (title, default, bounds, description) from its spec, and whether Codefresh's
OpenAPI document describes an endpoint from docs/api-notes.md section 5 (the evidence, written by hand). Nothing here
names a stream or a field. unit_tests/test_doc_tables.py fails when a table in the docs differs from what this prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver

REPO_ROOT = Path(__file__).resolve().parents[1]
EMPTY = "\N{EN DASH}"  # an empty cell


def resolved_manifest(path: Path = REPO_ROOT / "manifest.yaml") -> Dict[str, Any]:
    return ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(path.read_text()))


def listed_streams(manifest: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The streams of the `streams:` list, conditional ones included, in their order."""
    for entry in manifest.get("streams", []):
        if entry.get("type") == "ConditionalStreams":
            yield from entry.get("streams", [])
        else:
            yield entry


def conditions(manifest: Mapping[str, Any]) -> Dict[str, str]:
    """Stream name -> the config condition under which it exists (opt-in streams only)."""
    out: Dict[str, str] = {}
    for entry in manifest.get("streams", []):
        if entry.get("type") == "ConditionalStreams":
            field = re.search(r"config\.get\('(\w+)'\)", str(entry.get("condition")))
            for stream in entry.get("streams", []):
                out[_params(stream).get("name")] = field.group(1) if field else str(entry.get("condition"))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# One row per stream, read from the manifest
# ---------------------------------------------------------------------------------------------------------------------


def _params(stream: Mapping[str, Any]) -> Mapping[str, Any]:
    return stream.get("$parameters") or {}


def _with_params(value: Any, params: Mapping[str, Any]) -> str:
    """`{{ parameters.x }}` replaced by the stream's value of x (the only interpolation the columns need)."""
    return re.sub(r"\{\{\s*parameters\.(\w+)\s*\}\}", lambda m: str(params.get(m.group(1)) or ""), str(value or ""))


def _code(value: str) -> str:
    return f"`{value}`" if value else EMPTY


def _class(component: Mapping[str, Any]) -> str:
    return str(component.get("class_name") or "").rsplit(".", 1)[-1]


def _request(stream: Mapping[str, Any]) -> str:
    params, retriever = _params(stream), stream.get("retriever") or {}
    router = retriever.get("partition_router") or {}
    for parent in router.get("parent_stream_configs") or []:
        if parent.get("lazy_read_pointer"):
            return f"none: the parent's `{'.'.join(parent['lazy_read_pointer'])}`"
    if params.get("root_field"):  # the GitOps GraphQL API (definitions.gitops)
        fallback = _params(retriever.get("fallback") or {}).get("root_field")
        return f"`POST /2.0/api/graphql` `{params['root_field']}`" + (f", else `{fallback}`" if fallback else "")
    if params.get("endpoint"):
        method = (retriever.get("requester") or {}).get("http_method", "GET")
        return f"`{method} /{params['endpoint']}`"
    requests = [
        f"`{component.get('http_method', 'GET')} /{_path(component.get('url', ''))}`"
        for key, component in retriever.items()
        if key.endswith("_requester") and isinstance(component, Mapping)
    ]
    return ", then ".join(requests) or EMPTY


def _path(url: str) -> str:
    """`{{ config.api_root }}/pipelines/run/{{ stream_slice.pipeline | ... }}` -> `pipelines/run/{pipeline}`."""
    path = re.sub(r"^\{\{\s*config\.api_root\s*\}\}/", "", url)
    return re.sub(r"\{\{\s*stream_slice\.(\w+)[^}]*\}\}", r"{\1}", path)


def _nodes_of_listed(retriever: Mapping[str, Any]) -> bool:
    """gitops_workflow_nodes' retriever: the items of each record of a listing, no request of its own."""
    return _class(retriever) == "NodesOfListedRetriever"


def _paging(retriever: Mapping[str, Any]) -> str:
    if _nodes_of_listed(retriever):
        return f"the listing's: {_paging(retriever['listing'])}"
    if retriever.get("type") == "CustomRetriever" and retriever.get("fallback"):
        return _paging(retriever["retriever"])
    if retriever.get("type") == "CustomRetriever" and retriever.get("listing"):
        return f"one request per build of the listing ({_paging(retriever['listing'])})"
    if retriever.get("type") == "CustomRetriever" and retriever.get("pages"):
        return f"{_paging(retriever['pages'])} per window ({_class(retriever)})"
    strategy = (retriever.get("paginator") or {}).get("pagination_strategy") or {}
    if _class(strategy) == "NoRepeatedPages":  # every strategy's wrapper (the repeated-page check)
        strategy = strategy.get("strategy") or {}
    page_size_field = ((retriever.get("paginator") or {}).get("page_size_option") or {}).get("field_name")
    kind = strategy.get("type")
    if kind == "OffsetIncrement":
        return "offset"
    if kind == "PageIncrement":
        return "page/pageSize" if page_size_field == "pageSize" else "page"
    if _class(strategy) == "SliceCursorPagination":
        return "`first`/`after` cursors" if strategy.get("page_size") else "whole list (`after` if more)"
    if kind == "CustomPaginationStrategy":
        return "cursor-backed pages" if _class(strategy) == "CursorBackedPageIncrement" else _class(strategy)
    if retriever.get("type") == "CustomRetriever":
        return f"{EMPTY} ({_class(retriever)})"
    return "none"


def _records_at(stream: Mapping[str, Any]) -> str:
    params, retriever = _params(stream), stream.get("retriever") or {}
    retriever = retriever.get("retriever") if retriever.get("fallback") else retriever
    if _nodes_of_listed(retriever):
        return f"{_code(str(retriever.get('nodes_path')))} of each listed record"
    extractor = (retriever.get("record_selector") or {}).get("extractor") or {}
    if extractor.get("type") == "DpathExtractor":
        path = ".".join(_with_params(part, params) for part in extractor.get("field_path") or [])
        return _code(path) if path else "root"
    if extractor.get("type") == "CombinedExtractor":
        return " + ".join(_code(".".join(e.get("field_path") or [])) for e in extractor.get("extractors") or [])
    if extractor.get("type") == "CustomRecordExtractor" and _class(extractor) != "EnvelopeExtractor":
        return _class(extractor)
    if retriever.get("type") == "CustomRetriever" and not extractor and not retriever.get("pages"):
        return f"({_class(retriever)})"
    return _code(str(params.get("records_key") or "")) if params.get("records_key") else "root"


def _cursor_details(stream: Mapping[str, Any]) -> List[str]:
    cursor = stream.get("incremental_sync") or {}
    details = []
    if cursor.get("step"):
        details.append(f"{cursor['step']} windows")
    if cursor.get("lookback_window"):
        details.append("lookback")
    followed = cursor.get("$parameters") or {}
    if followed.get("follow_hours") is not None:
        details.append(f"unfinished {(followed.get('follow_records') or ['builds'])[0]} followed")
    return details


def _filters(stream: Mapping[str, Any]) -> List[str]:
    retriever = stream.get("retriever") or {}
    cursor = stream.get("incremental_sync") or {}
    parts: List[str] = []
    if cursor.get("is_client_side_incremental"):
        parts.append("client-side on the cursor")
    server_side = [cursor.get(key, {}).get("field_name") for key in ("start_time_option", "end_time_option")]
    for requester in _requesters(retriever):
        for name, value in (requester.get("request_parameters") or {}).items():
            # The cursor's interval, or a window a custom retriever cut from it (in the slice's extra fields).
            if "stream_interval" in str(value) or "extra_fields" in str(value):
                server_side.append(name)
    server_side.extend(_interval_variables(_params(stream).get("variables") or {}))
    if any(server_side):
        parts.append("server-side " + "/".join(_code(name) for name in server_side if name))
    condition = ((retriever.get("record_selector") or {}).get("record_filter") or {}).get("condition")
    if condition:
        parts.append("record filter")
    return parts


def _interval_variables(variables: Mapping[str, Any], prefix: str = "") -> List[str]:
    """The GraphQL variables (dotted: `filters.startDate`) whose value is the cursor's interval."""
    found: List[str] = []
    for name, value in variables.items():
        if isinstance(value, Mapping):
            found.extend(_interval_variables(value, f"{prefix}{name}."))
        elif "stream_interval" in str(value):
            found.append(f"{prefix}{name}")
    return found


def _requesters(retriever: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The retriever's requester, the one a gate wraps (`requester.requester`), and those of its `pages` and its
    `listing` (a per-build stream's builds listing)."""
    for holder in (retriever, retriever.get("pages") or {}, retriever.get("listing") or {}):
        requester = holder.get("requester") or {}
        while isinstance(requester, Mapping) and requester:
            yield requester
            requester = requester.get("requester") or {}


def _parent(stream: Mapping[str, Any]) -> str:
    retriever = stream.get("retriever") or {}
    if _nodes_of_listed(retriever):
        return f"the `{_params(stream).get('root_field')}` listing (its records' `{retriever.get('nodes_path')}`)"
    if retriever.get("type") == "CustomRetriever" and retriever.get("listing"):
        listing = _params(retriever["listing"])
        return f"the `{listing.get('endpoint')}` listing of each window"
    router = retriever.get("partition_router") or {}
    parents = [
        f"`{_params(config.get('stream') or {}).get('name')}` (`{config.get('parent_key')}`)"
        for config in router.get("parent_stream_configs") or []
    ]
    for partitions in (router, retriever.get("fallback_partitions") or {}):
        if partitions.get("type") == "ListPartitionRouter":
            parents.append(f"config (`{partitions.get('cursor_field')}`)")
    return ", ".join(parents) or EMPTY


def _per(stream: Mapping[str, Any]) -> str:
    retriever = stream.get("retriever") or {}
    if _nodes_of_listed(retriever):
        return ""
    if retriever.get("type") == "CustomRetriever" and retriever.get("listing"):
        return "for each build listed"
    router = retriever.get("partition_router") or {}
    parents = [_params(config.get("stream") or {}).get("name") for config in router.get("parent_stream_configs") or []]
    if parents:
        return "for each " + " and ".join(f"`{name}` record" for name in parents)
    if router.get("type") == "ListPartitionRouter":
        return "for each entry of the config"
    return ""


def _key_origin(stream: Mapping[str, Any], field: str) -> str:
    """Where a primary-key field an AddFields writes comes from: `metadata.id`, or the parent."""
    for transformation in stream.get("transformations") or []:
        if transformation.get("type") != "AddFields":
            continue
        for added in transformation.get("fields") or []:
            if list(added.get("path") or []) != [field]:
                continue
            value = str(added.get("value"))
            nested = re.fullmatch(r"\{\{\s*record\.([\w.]+)\s*\}\}", value)
            if nested:
                return f"from `{nested.group(1)}`"
            if re.fullmatch(r"\{\{\s*stream_partition\.parent_id\s*\}\}", value):
                return "the parent's key"
    return ""


@dataclass
class StreamRow:
    name: str
    request: str
    paging: str
    records_at: str
    primary_key: List[str]
    key_origins: List[str]
    cursor: str
    cursor_details: List[str]
    filters: List[str]
    scope: str
    parent: str
    per: str  # the user's words for what the stream sends its requests per (a parent record, a listed build), or ""
    condition: str  # the config field the stream exists under (opt-in), or ""


def stream_rows(manifest: Mapping[str, Any]) -> List[StreamRow]:
    opt_in = conditions(manifest)
    rows = []
    for stream in listed_streams(manifest):
        params = _params(stream)
        cursor = stream.get("incremental_sync") or {}
        keys = [str(key) for key in stream.get("primary_key") or []]
        rows.append(
            StreamRow(
                name=str(params.get("name")),
                request=_request(stream),
                paging=_paging(stream.get("retriever") or {}),
                records_at=_records_at(stream),
                primary_key=keys,
                key_origins=[_key_origin(stream, key) for key in keys],
                cursor=_with_params(cursor.get("cursor_field"), params) if cursor else "",
                cursor_details=_cursor_details(stream) if cursor else [],
                filters=_filters(stream),
                scope=str(params.get("scope") or ""),
                parent=_parent(stream),
                per=_per(stream),
                condition=opt_in.get(str(params.get("name")), ""),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# The evidence: docs/api-notes.md section 5 (one row per stream, written by hand)
# ---------------------------------------------------------------------------------------------------------------------

API_NOTES = REPO_ROOT / "docs" / "api-notes.md"


def evidence_rows(text: str) -> Dict[str, Dict[str, str]]:
    """The rows of the table of section 5 ("Endpoints the connector reads"), by stream: column name -> cell."""
    section = text.split("## 5.", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: Dict[str, Dict[str, str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0].split()[0]] = dict(zip(header, cells, strict=True))
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def contributing_streams_table(manifest: Mapping[str, Any]) -> str:
    """The engineer's view: how each stream reads."""
    columns = ["stream", "request", "paging", "records at", "primary key", "cursor", "filter", "scope", "parent"]
    rows = []
    for row in stream_rows(manifest):
        cursor = f"`{row.cursor}`" + (f" ({', '.join(row.cursor_details)})" if row.cursor_details else "")
        rows.append(
            [
                f"`{row.name}`",
                row.request,
                row.paging,
                row.records_at,
                ", ".join(f"`{key}`" for key in row.primary_key) or EMPTY,
                cursor if row.cursor else EMPTY,
                "; ".join(row.filters) or EMPTY,
                row.scope or EMPTY,
                row.parent,
            ]
        )
    return _table(columns, rows)


def user_streams_table(manifest: Mapping[str, Any], evidence: Mapping[str, Mapping[str, str]]) -> str:
    """The user's view: what each stream reads, how it syncs, and the scope its key needs."""
    columns = ["Stream", "Request", "Sync modes", "Primary key", "Cursor", "Scope", "In the OpenAPI"]
    rows = []
    for row in stream_rows(manifest):
        request = f"{row.request}, {row.per}" if row.per else row.request
        keys = [
            f"`{key}`" + (f" ({origin})" if origin else "")
            for key, origin in zip(row.primary_key, row.key_origins, strict=True)
        ]
        how = [*row.filters, *(detail for detail in row.cursor_details if not detail.endswith(" windows"))]
        cursor = f"`{row.cursor}`" + (f" ({'; '.join(how)})" if how else "") if row.cursor else EMPTY
        name = f"`{row.name}`" + (f" (with `{row.condition}`)" if row.condition else "")
        rows.append(
            [
                name,
                request,
                "full refresh, incremental" if row.cursor else "full refresh",
                ", ".join(keys) or EMPTY,
                cursor,
                row.scope or EMPTY,
                (evidence.get(row.name) or {}).get("OpenAPI", EMPTY),
            ]
        )
    return _table(columns, rows)


def _allowed(field: Mapping[str, Any]) -> str:
    if "enum" in field:
        return ", ".join(f"`{value}`" for value in field["enum"])
    low, high = field.get("minimum"), field.get("maximum")
    if low is not None and high is not None:
        return f"{low}\N{EN DASH}{high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    if field.get("pattern_descriptor"):
        return f"`{field['pattern_descriptor']}`"
    if field.get("type") == "array":
        return "a list"
    if field.get("type") == "object" and field.get("properties"):
        return ", ".join(f"`{name}`" for name in field["properties"])
    return EMPTY


def _default(field: Mapping[str, Any]) -> str:
    if "default" not in field:
        return EMPTY
    value = field["default"]
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"`{text}`" if text else "empty"


def _ordered(properties: Mapping[str, Any], groups: Sequence[str] = ()) -> List[str]:
    rank = {group: index for index, group in enumerate(groups)}
    return sorted(properties, key=lambda name: (rank.get(properties[name].get("group"), 0), properties[name]["order"]))


def config_table(spec: Mapping[str, Any]) -> str:
    """Every field of the spec, in the order of Airbyte's form."""
    properties, required = spec["properties"], set(spec.get("required") or [])
    groups = [group["id"] for group in spec.get("groups") or []]
    rows = [
        [
            properties[name]["title"],
            f"`{name}`",
            "yes" if name in required else "no",
            _default(properties[name]),
            _allowed(properties[name]),
            " ".join(str(properties[name]["description"]).split()),
        ]
        for name in _ordered(properties, groups)
    ]
    return _table(["Field", "Name in config", "Required", "Default", "Allowed", "What it does"], rows)


def entry_table(spec: Mapping[str, Any], field: str) -> str:
    """The keys of each entry of a list field (custom_streams, pipeline_runs)."""
    items = spec["properties"][field]["items"]
    properties, required = items["properties"], set(items.get("required") or [])
    rows = [
        [
            f"`{name}`",
            "yes" if name in required else "no",
            _default(properties[name]),
            _allowed(properties[name]),
            " ".join(str(properties[name]["description"]).split()),
        ]
        for name in _ordered(properties)
    ]
    return _table(["Key", "Required", "Default", "Allowed", "What it does"], rows)


# ---------------------------------------------------------------------------------------------------------------------
# Where each table goes
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    document: str  # relative to the repository
    name: str
    render: Callable[[Mapping[str, Any], Mapping[str, Mapping[str, str]]], str]

    @property
    def start(self) -> str:
        return f"<!-- generated:{self.name} (scripts/doc_tables.py --write; do not edit by hand) -->"

    @property
    def end(self) -> str:
        return f"<!-- end generated:{self.name} -->"


def _spec(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    return manifest["spec"]["connection_specification"]


BLOCKS = [
    Block("docs/codefresh.md", "config", lambda manifest, _: config_table(_spec(manifest))),
    Block("docs/codefresh.md", "streams", user_streams_table),
    Block("docs/codefresh.md", "pipeline_runs", lambda manifest, _: entry_table(_spec(manifest), "pipeline_runs")),
    Block("docs/codefresh.md", "custom_streams", lambda manifest, _: entry_table(_spec(manifest), "custom_streams")),
    Block("CONTRIBUTING.md", "streams", lambda manifest, _: contributing_streams_table(manifest)),
]


def replace_block(document: str, block: Block, table: str) -> str:
    if block.start not in document or block.end not in document:
        raise ValueError(f"{block.document} lacks the markers {block.start!r} ... {block.end!r}")
    head, rest = document.split(block.start, 1)
    _, tail = rest.split(block.end, 1)
    return f"{head}{block.start}\n{table}\n{block.end}{tail}"


def generated_documents(manifest: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """Every document that holds a generated table, as it should read: relative path -> text."""
    manifest = manifest if manifest is not None else resolved_manifest()
    evidence = evidence_rows(API_NOTES.read_text())
    documents: Dict[str, str] = {}
    for block in BLOCKS:
        text = documents.get(block.document) or (REPO_ROOT / block.document).read_text()
        documents[block.document] = replace_block(text, block, block.render(manifest, evidence))
    return documents


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the tables in the docs")
    args = parser.parse_args()
    if not args.write:
        manifest, evidence = resolved_manifest(), evidence_rows(API_NOTES.read_text())
        for block in BLOCKS:
            print(f"{block.document} ({block.name}):\n{block.render(manifest, evidence)}\n")
        return 0
    for document, text in generated_documents().items():
        path = REPO_ROOT / document
        if path.read_text() != text:
            path.write_text(text)
            print(f"rewrote the tables of {document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
