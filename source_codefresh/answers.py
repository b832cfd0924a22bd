"""The base policy of the API (`definitions.error_handlers.base`): LastWord, plus one check the CDK does not make: a
2xx answer must be the JSON the stream reads.

The CDK's JSON decoder reads an unparsable body as an empty page, which would silently lose data when a proxy answers
with a login page or a body is cut off. Here:
- a body that is not JSON at all (HTML, text) fails at once as a config error: it will not fix itself, and it usually
  means `base_url` points at something that is not the Codefresh API;
- a JSON body that does not parse (cut off) is retried like a transient server error;
- JSON without the envelope key the stream reads its records from (`$parameters.records_key`, dotted for nested keys
  such as `workflows.docs`) fails, naming what was missing, and so does a list of records that holds something other
  than objects (no stream's records are anything else).
Every message says what was received, never the request headers (they hold the API key). A custom stream's answers
(`custom_stream_base`) are worded as what to change in its entry of the `custom_streams` setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction

from source_codefresh.error_handlers import LastWord
from source_codefresh.responses import preview, response_json, where


@dataclass
class ApiAnswers(LastWord):
    """The base policy of the API: LastWord, and the 2xx checks of the module's docstring."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._records_path: List[str] = [key for key in str(parameters.get("records_key") or "").split(".") if key]

    def check_answer(self, answer: requests.Response) -> Optional[ErrorResolution]:
        content_type = answer.headers.get("Content-Type", "")
        content = answer.content or b""
        try:
            body = response_json(answer)
        except orjson.JSONDecodeError:
            received = f"{content_type or 'no Content-Type'}, {len(content):,} bytes starting {preview(content)!r}"
            if "json" in content_type.lower():
                return ErrorResolution(
                    ResponseAction.RETRY,
                    FailureType.transient_error,
                    f"Codefresh answered {where(answer)} with a JSON body that does not parse ({received}), probably "
                    "cut off on the way. If this persists, check the network path to Codefresh.",
                )
            return ErrorResolution(
                ResponseAction.FAIL,
                FailureType.config_error,
                f"Codefresh answered {where(answer)} with something that is not JSON ({received}). Check that "
                "base_url is the Codefresh API root (https://g.codefresh.io/api, or https://<your-host>/api on "
                "premises) and that no proxy or login page is in between.",
            )
        node: Any = body
        for key in self._records_path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            strange = [item for item in node if not isinstance(item, dict)][:1]
            if not strange:
                return None
            message, failure_type = self.not_objects(where(answer), type(strange[0]).__name__)
        elif isinstance(node, dict):
            return None
        else:
            top_level_keys = str(sorted(body)[:8] if isinstance(body, dict) else type(body).__name__)
            message, failure_type = self.no_records(where(answer), top_level_keys)
        return ErrorResolution(ResponseAction.FAIL, failure_type, message)

    def no_records(self, where: str, top_level_keys: str) -> Tuple[str, FailureType]:
        return (
            f"Codefresh answered {where} with JSON that has no '{'.'.join(self._records_path) or 'records'}' list "
            f"(top-level keys: {top_level_keys}), so stream '{self._stream_name}' cannot read it. The API may have "
            "changed; please report this.",
            FailureType.system_error,
        )

    def not_objects(self, where: str, kind: str) -> Tuple[str, FailureType]:
        return (
            f"Codefresh answered {where} with records that are not objects ({kind} values among them), so stream "
            f"'{self._stream_name}' cannot read them; the API may have changed: please report this.",
            FailureType.system_error,
        )


@dataclass
class CustomStreamAnswers(ApiAnswers):
    """A custom stream's base policy: the user chose its path, params and records_key, so what cannot be read is a
    config error that says which to change."""

    def client_error_advice(self) -> Tuple[str, FailureType]:
        return (
            f"check the path and params of custom stream '{self._stream_name}' in custom_streams (HTTP 414: its params "
            "are too long).",
            FailureType.config_error,
        )

    def no_records(self, where: str, top_level_keys: str) -> Tuple[str, FailureType]:
        wanted = f"{'.'.join(self._records_path)!r} list" if self._records_path else "list or object"
        return (
            f"Codefresh answered {where} with JSON that has no {wanted} (top-level keys: {top_level_keys}), so custom "
            f"stream '{self._stream_name}' reads nothing: set its records_key in custom_streams to the key that holds "
            "the records (dotted when nested), or leave it empty when the answer is the list itself.",
            FailureType.config_error,
        )

    def not_objects(self, where: str, kind: str) -> Tuple[str, FailureType]:
        return (
            f"Codefresh answered {where} with JSON where custom stream '{self._stream_name}' reads records from a list "
            f"that holds {kind} values, not objects: set its records_key in custom_streams to the key of a list of "
            "objects.",
            FailureType.config_error,
        )
