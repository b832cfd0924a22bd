"""Record extractors: records under a fixed path of keys, and one record per step of a build."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, List, Mapping, MutableMapping

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.types import Config

from source_codefresh.responses import response_json


@dataclass
class EnvelopeExtractor(RecordExtractor):
    """The records under `records_key` (dotted for nested keys, e.g. `workflows.docs`), or the whole answer.

    A list gives one record per item, an object one record, anything else none: what the CDK's DpathExtractor gives
    for a path without wildcards. It looks the keys up directly, where `dpath.get` walks every node of the answer to
    find one path (a quarter of the CPU time of a builds sync). The error handler has already failed any 2xx answer
    that is not JSON or lacks the key, so a missing key here means an ignored error answer."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    records_key: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        key = InterpolatedString.create(str(self.records_key or ""), parameters=parameters).eval(self.config)
        self._path: List[str] = [part for part in str(key or "").split(".") if part]

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        try:
            node = response_json(response)
        except ValueError:
            return
        for key in self._path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            yield from node
        elif isinstance(node, dict) and node:
            yield node


@dataclass
class BuildStepsExtractor(RecordExtractor):
    """One record per step of a build, from `GET /workflow/{id}/context-revision`.

    The answer is a list of context revisions; the last one holds `context.stepsMetadata`, an object keyed by step
    name. Each value becomes a record with the step's `name` added; the pseudo-step `Initializing` (a duplicate of
    `Initializing Process`) is left out. A build terminated before it started has no revision and yields no steps.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    skipped_steps: List[str] = field(default_factory=lambda: ["Initializing"])

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        try:
            revisions = response_json(response)
        except ValueError:
            return
        if not isinstance(revisions, list) or not revisions:
            return
        last = revisions[-1] if isinstance(revisions[-1], Mapping) else {}
        steps = ((last.get("context") or {}).get("stepsMetadata")) or {}
        for name, step in steps.items():
            if name in self.skipped_steps or not isinstance(step, Mapping):
                continue
            yield {"name": name, **step}
