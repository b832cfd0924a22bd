"""Pipeline runs: the one write, opt-in through the `pipeline_runs` setting. Never starts a build twice."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import InitVar, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.errors import spent_retries_reason
from source_codefresh.responses import preview
from source_codefresh.state import format_iso_ms

logger = logging.getLogger("airbyte")

RUN_ANNOTATION_KEY = "source_codefresh_run_id"
# The statuses of a build that has not ended yet. Polling stops on any other status: the documented end states
# (`success`, `error`, `terminated`), a `denied` approval (a dashboard filters builds by status=denied), and any
# status Codefresh adds later, rather than polling such a build until wait_timeout_minutes.
RUNNING_BUILD_STATUSES = frozenset({"pending", "elected", "running", "pending-approval", "delayed", "terminating"})


def build_has_ended(status: Any) -> bool:
    """True unless `status` is one of the running ones (a build without a status yet is still starting)."""
    return status is not None and status not in RUNNING_BUILD_STATUSES


def _request_never_sent(error: Exception) -> bool:
    """True when the connection failed before the request was sent, so Codefresh cannot have started a build."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        return type(reason).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
    return False


@dataclass
class NoBlindRetryErrorHandler(DefaultErrorHandler):
    """Error policy of `POST /pipelines/run/{name}`, which has no idempotency key.

    Retried only when Codefresh certainly did not start a build: a 429 (rejected before processing) or a connection
    that failed before the request was sent. Every other failure (5xx, a dropped connection, a read timeout, 4xx)
    is handed back to PipelineRunRetriever unretried (IGNORE), which looks the build up by its run annotation."""

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if isinstance(response_or_exception, Exception):
            if _request_never_sent(response_or_exception):
                return ErrorResolution(
                    ResponseAction.RETRY,
                    FailureType.transient_error,
                    "Could not connect to Codefresh to start the run; retrying (nothing was sent).",
                )
            return ErrorResolution(
                ResponseAction.IGNORE,
                FailureType.transient_error,
                "The run request got no answer; looking the build up by its run id.",
            )
        if response_or_exception is not None and response_or_exception.status_code == 429:
            return super().interpret_response(response_or_exception)
        if response_or_exception is not None and not response_or_exception.ok:
            return ErrorResolution(
                ResponseAction.IGNORE,
                FailureType.transient_error,
                f"The run request was answered {response_or_exception.status_code}.",
            )
        return super().interpret_response(response_or_exception)


@dataclass
class PipelineRunRetriever(Retriever):
    """One record per configured pipeline run: POST the run once, poll the build until it ends, emit its detail.

    Never triggers twice: each run carries a unique annotation (`source_codefresh_run_id`). When the POST fails in a
    way that leaves it unknown whether the build started (5xx, dropped connection, timeout), the build is looked up by
    that annotation and adopted; if none is found the stream fails with a message naming the pipeline, and the POST is
    not sent again. Polling GETs go through the shared error policy (safe to retry)."""

    run_requester: Requester
    build_requester: Requester
    annotation_requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    poll_interval_seconds: Union[float, str] = 10
    lookup_attempts: int = 3
    name: str = "pipeline_runs"
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._poll_interval = float(
            InterpolatedString.create(str(self.poll_interval_seconds), parameters=parameters).eval(self.config)
        )

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        index = int((stream_slice.partition if stream_slice else {}).get("run_index", 0))
        run = dict(self.config.get("pipeline_runs", [])[index])
        yield self._run(run, index)

    # -- one run ------------------------------------------------------------------------------------------------

    def _run(self, run: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        pipeline = str(run["pipeline"]).strip()
        run_id = f"source-codefresh-{uuid.uuid4()}"
        triggered_at = format_iso_ms(datetime.now(timezone.utc))
        build_id = self._start(pipeline, run, run_id, index)
        logger.info(f"Pipeline run '{pipeline}' started build {build_id} (run id {run_id}).")

        timeout = timedelta(minutes=float(run.get("wait_timeout_minutes") or 30))
        deadline = time.monotonic() + timeout.total_seconds()
        polls, build = 0, {}
        while True:
            try:
                build = self._get_build(build_id)
            except AirbyteTracedException as error:
                # The build runs on in Codefresh: say which one, and that syncing again would start another.
                said = str(error.message or error.internal_message or "")
                max_time = getattr(getattr(self.build_requester, "error_handler", None), "max_time", None)
                reason = spent_retries_reason(said, max_time) or said.rstrip(".")
                raise _run_error(
                    f"Pipeline run '{pipeline}' started build {build_id} (run id {run_id}), but watching it failed: "
                    f"{reason}. Check that build in Codefresh; syncing again starts another build.",
                    error.failure_type or FailureType.transient_error,
                ) from error
            polls += 1
            finished = build_has_ended(build.get("status"))
            if finished or time.monotonic() >= deadline:
                break
            time.sleep(self._poll_interval)
        if not finished:
            logger.warning(
                f"Pipeline run '{pipeline}' (build {build_id}) was still '{build.get('status')}' after "
                f"{timeout}; emitting it with timed_out=true."
            )
        return {
            **build,
            "id": build.get("id") or build_id,
            "pipeline": pipeline,
            "requested_branch": run.get("branch"),
            "requested_sha": run.get("sha"),
            "requested_trigger": run.get("trigger"),
            "requested_variable_names": sorted((run.get("variables") or {}).keys()),
            "run_id": run_id,
            "triggered_at": triggered_at,
            "timed_out": not finished,
            "polls": polls,
        }

    def _start(self, pipeline: str, run: Mapping[str, Any], run_id: str, index: int) -> str:
        body: Dict[str, Any] = {key: run[key] for key in ("branch", "sha", "trigger") if run.get(key)}
        if run.get("variables"):
            body["variables"] = [{"key": key, "value": str(value)} for key, value in run["variables"].items()]
        if run.get("options"):
            body["options"] = dict(run["options"])
        body["annotations"] = {RUN_ANNOTATION_KEY: run_id}
        response = self.run_requester.send_request(
            stream_slice=StreamSlice(partition={"pipeline": pipeline}, cursor_slice={}), request_body_json=body
        )
        if response is not None and response.ok:
            try:
                build_id = response.json()
            except ValueError:
                build_id = None
            if isinstance(build_id, str) and build_id:
                return build_id
            raise _run_error(
                f"Codefresh accepted the run of pipeline '{pipeline}' but did not answer with a build id "
                f"({preview(response.content or b'')!r}); check Codefresh for a build annotated {RUN_ANNOTATION_KEY}="
                f"{run_id} before syncing again.",
                FailureType.system_error,
            )
        if response is not None and response.status_code == 404:
            raise _run_error(
                f"Codefresh has no pipeline '{pipeline}' (pipeline_runs entry {index + 1}): use the full name "
                "project/pipeline as Codefresh shows it.",
                FailureType.config_error,
            )
        if response is not None and response.status_code in (401, 403):
            raise _run_error(
                f"Codefresh refused to run pipeline '{pipeline}' (HTTP {response.status_code}): the API key needs "
                "the pipeline:run scope.",
                FailureType.config_error,
            )
        if response is not None and 400 <= response.status_code < 500:
            raise _run_error(
                f"Codefresh rejected the run of pipeline '{pipeline}' (HTTP {response.status_code}: "
                f"{_error_text(response)}); check that entry's branch, sha, trigger and variables.",
                FailureType.config_error,
            )
        # 5xx, dropped connection, timeout: the build may have started. Look for it; never POST again.
        what = f"HTTP {response.status_code}" if response is not None else "no answer"
        build_id = self._find_run(run_id)
        if build_id:
            logger.info(
                f"The run request of '{pipeline}' got {what}, but build {build_id} carries its run id; adopted."
            )
            return build_id
        raise _run_error(
            f"Starting pipeline '{pipeline}' got {what} and no build carrying run id {run_id} was found, so it is "
            "unknown whether a build started. The connector did not send the request again, to never start a second "
            f"build: check the pipeline's builds in Codefresh before syncing again.",
            FailureType.transient_error,
        )

    def _find_run(self, run_id: str) -> Optional[str]:
        for attempt in range(self.lookup_attempts):
            if attempt:
                time.sleep(self._poll_interval)
            response = self.annotation_requester.send_request(
                stream_slice=StreamSlice(partition={}, cursor_slice={}),
                request_params={"entityType": "build", "key": RUN_ANNOTATION_KEY, "value": run_id},
            )
            found = response.json() if response is not None and response.ok else []
            for annotation in found if isinstance(found, list) else []:
                if isinstance(annotation, dict) and annotation.get("value") == run_id and annotation.get("entityId"):
                    return str(annotation["entityId"])
        return None

    def _get_build(self, build_id: str) -> Dict[str, Any]:
        response = self.build_requester.send_request(
            stream_slice=StreamSlice(partition={"build_id": build_id}, cursor_slice={})
        )
        body = response.json() if response is not None else None
        if not isinstance(body, dict):
            raise _run_error(f"Codefresh answered build {build_id} with no build object.", FailureType.system_error)
        return body


def _run_error(message: str, failure_type: FailureType) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return preview(response.content or b"")
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)
