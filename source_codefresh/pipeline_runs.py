"""Pipeline runs: the one write, opt-in through the `pipeline_runs` setting. Never starts a build twice, even across
attempts: what was started is saved in the stream's state before it is watched (source_codefresh/state.py)."""

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
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.responses import preview
from source_codefresh.retries import spent_retries_reason
from source_codefresh.state import StartedRun, StartedRunsCursor, build_finished, format_iso_ms

logger = logging.getLogger("airbyte")

RUN_ANNOTATION_KEY = "source_codefresh_run_id"


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
    """One record per configured pipeline run: POST the run once, save what was started, poll the build until it
    ends, emit it.

    Never triggers twice, even across attempts: each run carries a unique annotation (`source_codefresh_run_id`), and
    what was started (the build id, or the run id while the POST's answer was lost) is saved in the stream's state
    (`cursor`, a StartedRunsCursor) before the build is watched. A retried attempt given that state follows that build
    (or looks for the build carrying that run id) instead of posting. When the POST fails in a way that leaves it
    unknown whether the build started (5xx, dropped connection, timeout), the build is looked up by its annotation
    and adopted; the POST is never sent again. Polling GETs go through the shared error policy (safe to retry)."""

    run_requester: Requester
    build_requester: Requester
    annotation_requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    cursor: Optional[Cursor] = None
    poll_interval_seconds: Union[float, str] = 10
    lookup_attempts: int = 3
    # While waiting for a build, a log line at least this often: Airbyte takes a long silence for a stuck sync
    # (metadata.yaml maxSecondsBetweenMessages).
    log_every_seconds: float = 60
    name: str = "pipeline_runs"
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._poll_interval = float(
            InterpolatedString.create(str(self.poll_interval_seconds), parameters=parameters).eval(self.config)
        )
        if not isinstance(self.cursor, StartedRunsCursor):
            raise ValueError(
                "The pipeline_runs stream needs its StartedRunsCursor ($parameters.checkpoint: started_runs in the "
                "manifest): without it a retried attempt would start another build."
            )
        self._runs: StartedRunsCursor = self.cursor

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        index = int((stream_slice.partition if stream_slice else {}).get("run_index", 0))
        run = dict(self.config.get("pipeline_runs", [])[index])
        yield self._run(run, index)
        # After the record: a state that no longer holds the run (the record is on its way first).
        self._runs.closed(index)

    # -- one run ------------------------------------------------------------------------------------------------

    def _run(self, run: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        pipeline = str(run["pipeline"]).strip()
        started = self._runs.open_run(index) or self._start(pipeline, run, index)
        if started.build_id is None:
            started = self._adopt_or_stop(started, index)
        build_id = str(started.build_id)

        timeout = timedelta(minutes=float(run["wait_timeout_minutes"]))  # the spec's default fills it in
        deadline = time.monotonic() + timeout.total_seconds()
        polls, build = 0, {}
        last_line = time.monotonic()
        while True:
            build = self._watch(pipeline, started)
            polls += 1
            # Ended (state.py `build_finished`): a `denied` approval or a status Codefresh adds later stops polling
            # as soon as the build has its `finished` time, not at wait_timeout_minutes.
            finished = build_finished(build)
            if finished or time.monotonic() >= deadline:
                break
            last_line = self._wait(pipeline, build_id, build.get("status"), polls, last_line)
        if not finished:
            logger.warning(
                f"Pipeline run '{pipeline}' (build {build_id}) was still '{build.get('status')}' after "
                f"{timeout}; emitting it with timed_out=true."
            )
        variables = run.get("variables") or []
        return {
            **build,
            "id": build.get("id") or build_id,
            "pipeline": pipeline,
            "requested_branch": run.get("branch"),
            "requested_sha": run.get("sha"),
            "requested_trigger": run.get("trigger"),
            "requested_variable_names": sorted({str(variable.get("name")) for variable in variables}),
            "run_id": started.run_id,
            "triggered_at": started.triggered_at,
            "timed_out": not finished,
            "polls": polls,
        }

    def _wait(self, pipeline: str, build_id: str, status: Any, polls: int, last_line: float) -> float:
        """Sleeps one poll interval, with a line at least every `log_every_seconds`; returns when the last line was."""
        remaining = self._poll_interval
        while remaining > 0:
            until_line = last_line + self.log_every_seconds - time.monotonic()
            if until_line <= 0:
                logger.info(f"Pipeline run '{pipeline}': build {build_id} is '{status}' ({polls} polls so far).")
                last_line, until_line = time.monotonic(), self.log_every_seconds
            step = min(remaining, until_line)
            time.sleep(step)
            remaining -= step
        return last_line

    def _start(self, pipeline: str, run: Mapping[str, Any], index: int) -> StartedRun:
        """POSTs the run once and saves what it started: the build, or, when the answer was lost, the run id that
        finds it."""
        run_id = f"source-codefresh-{uuid.uuid4()}"
        triggered_at = format_iso_ms(datetime.now(timezone.utc))
        body: Dict[str, Any] = {key: run[key] for key in ("branch", "sha", "trigger") if run.get(key)}
        if run.get("variables"):
            body["variables"] = [{"key": str(v.get("name")), "value": str(v.get("value"))} for v in run["variables"]]
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
            if not (isinstance(build_id, str) and build_id):
                # Something started (Codefresh accepted it), but which build is unknown: saved, so a retried
                # attempt looks it up by its run id rather than posting.
                self._runs.started(index, StartedRun(pipeline, run_id, None, triggered_at))
                raise _run_error(
                    f"Codefresh accepted the run of pipeline '{pipeline}' but did not answer with a build id "
                    f"({preview(response.content or b'')!r}); check Codefresh for a build annotated "
                    f"{RUN_ANNOTATION_KEY}={run_id}. A retried attempt looks for that build and starts no other.",
                    FailureType.system_error,
                )
            started = StartedRun(pipeline, run_id, build_id, triggered_at)
            self._runs.started(index, started)
            logger.info(f"Pipeline run '{pipeline}' started build {build_id} (run id {run_id}).")
            return started
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
        # 5xx, dropped connection, timeout: the build may have started. Saved first, then looked for; never POSTed
        # again.
        what = f"HTTP {response.status_code}" if response is not None else "no answer"
        lost = StartedRun(pipeline, run_id, None, triggered_at)
        self._runs.started(index, lost)
        build_id = self._find_run(run_id)
        if build_id:
            logger.info(f"The run request of '{pipeline}' got {what}, but build {build_id} has its run id; adopted.")
            started = StartedRun(pipeline, run_id, build_id, triggered_at)
            self._runs.started(index, started)
            return started
        # Transient: Airbyte retries the attempt, which looks for the build again (it never posts).
        raise _run_error(
            f"Starting pipeline '{pipeline}' got {what} and no build carrying run id {run_id} was found yet, so it "
            "is unknown whether a build started. The connector did not send the request again: a retried attempt "
            "looks for that build again and follows it, and never starts another.",
            FailureType.transient_error,
        )

    def _adopt_or_stop(self, lost: StartedRun, index: int) -> StartedRun:
        """A run an earlier attempt started without learning its build: the build carrying its run id, if any."""
        build_id = self._find_run(lost.run_id)
        if build_id:
            logger.info(
                f"Pipeline run '{lost.pipeline}': build {build_id} carries run id {lost.run_id} of an earlier attempt; "
                "adopted."
            )
            started = StartedRun(lost.pipeline, lost.run_id, build_id, lost.triggered_at)
            self._runs.started(index, started)
            return started
        # Looked for twice, minutes apart: most likely nothing started. A config error ends the retries (another
        # attempt could only look again); the next sync starts a new build.
        self._runs.closed(index)
        raise _run_error(
            f"No build carries run id {lost.run_id} of pipeline '{lost.pipeline}', which an earlier attempt requested "
            f"at {lost.triggered_at} without getting an answer, so Codefresh most likely did not start it. Nothing was "
            "started again: check the pipeline's builds in Codefresh; the next sync starts a new build.",
            FailureType.config_error,
        )

    def _watch(self, pipeline: str, started: StartedRun) -> Dict[str, Any]:
        try:
            return self._get_build(str(started.build_id))
        except AirbyteTracedException as error:
            # The build runs on in Codefresh and stays in the state: a retried attempt follows it.
            said = str(error.message or error.internal_message or "")
            max_time = getattr(getattr(self.build_requester, "error_handler", None), "max_time", None)
            reason = spent_retries_reason(said, max_time) or said.rstrip(".")
            raise _run_error(
                f"Pipeline run '{pipeline}' started build {started.build_id} (run id {started.run_id}), but watching "
                f"it failed: {reason}. A retried attempt follows the same build; none was started again.",
                error.failure_type or FailureType.transient_error,
            ) from error

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
