"""The manifest's layout rules, checked so that they hold by construction rather than by a comment.

- Every stream has one home under `definitions.streams`; the `streams:` list only references them.
- Every stream, including a parent read inside a child's partition router, sets every policy parameter itself
  (its `$parameters` start from `definitions.stream_parameters`). The CDK hands a child's `$parameters` down to the
  parent stream it reads; a parent without its own `scope` would inherit the child's and skip a 403 silently.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver

from source_codefresh.source import manifest_path


@pytest.fixture(scope="module")
def raw_manifest() -> Dict[str, Any]:
    return yaml.safe_load(manifest_path().read_text())


@pytest.fixture(scope="module")
def resolved_manifest(raw_manifest) -> Dict[str, Any]:
    return ManifestReferenceResolver().preprocess_manifest(raw_manifest)


def _components(node: Any, component_type: str, path: str = "") -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Every component of `component_type` in the resolved manifest, with where it sits (nested ones included:
    parents inside partition routers, retrievers inside custom retrievers)."""
    if isinstance(node, dict):
        if node.get("type") == component_type:
            yield path, node
        for key, value in node.items():
            yield from _components(value, component_type, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _components(value, component_type, f"{path}/{index}")


def test_the_streams_list_only_references_definitions(raw_manifest):
    entries: List[Any] = []
    for entry in raw_manifest["streams"]:
        entries.extend(entry["streams"] if entry.get("type") == "ConditionalStreams" else [entry])
    for entry in entries:
        assert set(entry) == {"$ref"}, f"inline stream in streams: {entry}"
        assert entry["$ref"].startswith("#/definitions/streams/"), entry


def test_every_stream_sets_every_policy_parameter_itself(resolved_manifest):
    policy_keys = set(resolved_manifest["definitions"]["stream_parameters"])
    streams = list(_components(resolved_manifest, "DeclarativeStream"))
    assert len(streams) > 25
    for path, stream in streams:
        missing = policy_keys - set(stream.get("$parameters") or {})
        assert not missing, f"{path} ({stream.get('$parameters', {}).get('name')}) inherits {sorted(missing)}"


def test_a_parent_variant_is_its_stream_plus_who_it_is_read_for(resolved_manifest):
    streams = resolved_manifest["definitions"]["streams"]
    for name, definition in streams.items():
        if not name.endswith("_as_parent"):
            continue
        own = definition["$parameters"]
        assert own["reading_for"], f"{name} must name the child it is read for"
        assert own["name"] in streams, f"{name} is a variant of a stream that does not exist"


def test_every_retriever_sends_through_the_scope_gate(resolved_manifest):
    # A requester outside the gate keeps sending after a 403 skipped its stream or found the key restricted.
    # The requester of every SimpleRetriever (the ones that send a stream's requests).
    found = [
        (path, retriever["requester"])
        for path, retriever in _components(resolved_manifest, "SimpleRetriever")
        if "requester" in retriever
    ]
    assert len(found) > 20
    ungated = [
        path
        for path, requester in found
        if requester.get("class_name") != "source_codefresh.access.ScopeGatedRequester"
    ]
    assert not ungated, ungated


def _policies(node: Any, scope: Any = None, path: str = "") -> Iterator[Tuple[str, Any, List[str]]]:
    """Every ErrorPolicy under `node` with the scope of the `$parameters` in effect there and its handlers' classes;
    a nested stream (a parent read by a child) is one of its own, walked from the top."""
    if isinstance(node, dict):
        scope = (node.get("$parameters") or {}).get("scope", scope)
        if node.get("class_name") == "source_codefresh.error_handlers.ErrorPolicy":
            yield path, scope, [handler["class_name"].rsplit(".", 1)[-1] for handler in node["error_handlers"]]
        for key, value in node.items():
            if not (isinstance(value, dict) and value.get("type") == "DeclarativeStream"):
                yield from _policies(value, scope, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _policies(value, scope, f"{path}/{index}")


def test_a_stream_composes_the_missing_scope_handler_exactly_when_it_declares_its_scope(resolved_manifest):
    # The skip's line names the scope; a stream without one must fail on a 403, not skip. Both after the question
    # whether the key itself is restricted, and before the base policy, which answers what nobody named.
    streams = list(_components(resolved_manifest, "DeclarativeStream"))
    checked = 0
    for stream_path, stream in streams:
        for path, scope, handlers in _policies(stream, path=stream_path):
            checked += 1
            assert ("MissingScope" in handlers) == bool(scope), f"{path}: scope {scope!r}, handlers {handlers}"
            assert handlers[0] == "RestrictedKey", f"{path}: {handlers}"
            assert handlers[-1] in ("ApiAnswers", "CustomStreamAnswers"), f"{path}: {handlers}"
    assert checked > 40
