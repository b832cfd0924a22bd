"""The parts the error policy is composed of: named handlers, one per behaviour (manifest `definitions.error_handlers`),
which each requester composes, in order, ending with a base policy.

- `ErrorRules`: a named handler. It speaks for the error answers its response filters name and for nothing else: a
  RETRY or an IGNORE it answers; a FAIL it raises itself, with the filter's sentence (the CDK would add the answer's
  raw body, which may hold credentials). Anything else (a 2xx, an exception, another status) it passes: an unraised
  FAIL, which CompositeErrorHandler reads as "ask the next handler" (a DefaultErrorHandler would claim every status
  with the CDK's defaults instead).
- `LastWord`: the base of a composition (or a requester's only handler): its own filters, then what nobody named (a
  4xx fails or skips that request, anything else is retried), every FAIL raised with one sentence.
- `ErrorPolicy`: the composition, CompositeErrorHandler with the retries of its base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple, Type, Union

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers import CompositeErrorHandler, DefaultErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    SUCCESS_RESOLUTION,
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.responses import where

Answer = Optional[Union[requests.Response, Exception]]
PASS = ErrorResolution(ResponseAction.FAIL)  # not this handler's to judge: the composition asks the next one


def decided(
    resolution: ErrorResolution, answer: Answer, failure: Type[AirbyteTracedException] = AirbyteTracedException
) -> ErrorResolution:
    """`resolution`, or, for a FAIL, `failure` raised with its sentence (and, for the logs, what was answered)."""
    if resolution.response_action != ResponseAction.FAIL:
        return resolution
    message = resolution.error_message or "Codefresh's answer cannot be read."
    if isinstance(answer, requests.Response):
        internal = f"{where(answer)} answered HTTP {answer.status_code}: {message}"
    else:
        internal = f"{type(answer).__name__}: {message}"
    raise failure(
        message=message, internal_message=internal, failure_type=resolution.failure_type or FailureType.system_error
    )


@dataclass
class ErrorRules(DefaultErrorHandler):
    """A named handler: the error answers its response filters name, nothing else (see the module's docstring)."""

    def interpret_response(self, response_or_exception: Answer) -> ErrorResolution:
        named = self.named(response_or_exception)
        return decided(named, response_or_exception) if named else PASS

    def named(self, answer: Answer) -> Optional[ErrorResolution]:
        """What the first filter that matches an error answer says; None for anything else."""
        if not isinstance(answer, requests.Response) or answer.ok:
            return None
        return next((said for said in (f.matches(answer) for f in self.response_filters or []) if said), None)


@dataclass
class LastWord(ErrorRules):
    """The base of a composition: its filters, then every answer nobody named, the API's and the log storage's alike.

    An error answer no filter names: a 4xx fails the stream at once (`unnamed_client_error: fail`: retrying does not
    change it, where the CDK retried it like a server error) or skips that one request (`skip`), and anything else is
    retried; the message never quotes the answer's body or the URL's query (the CDK's does). A 2xx answer is a
    success unless `check_answer` says otherwise; an exception is read as the CDK reads it."""

    answered_by: str = "Codefresh"
    unnamed_client_error: str = "fail"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._stream_name = str(parameters.get("name") or "")

    def interpret_response(self, response_or_exception: Answer) -> ErrorResolution:
        return decided(self._resolve(response_or_exception), response_or_exception)

    def _resolve(self, answer: Answer) -> ErrorResolution:
        if not isinstance(answer, requests.Response):
            return DefaultErrorHandler.interpret_response(self, answer)
        if answer.ok:
            return self.check_answer(answer) or SUCCESS_RESOLUTION
        return self.named(answer) or self._unnamed(answer)

    def check_answer(self, answer: requests.Response) -> Optional[ErrorResolution]:
        """What is wrong with a 2xx answer, or None (here: nothing)."""
        return None

    def client_error_advice(self) -> Tuple[str, FailureType]:
        """What to do about a 4xx no filter names, and whose error it is."""
        return "the API may have changed; please report this.", FailureType.system_error

    def _unnamed(self, answer: requests.Response) -> ErrorResolution:
        status = f"HTTP {answer.status_code} {answer.reason or ''}".strip()
        if not 400 <= answer.status_code < 500 or answer.status_code in (408, 429):
            message = f"{self.answered_by} answered {where(answer)} with {status}; retrying."
            return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error, message)
        if self.unnamed_client_error == "skip":
            message = f"Skipping {where(answer)} in stream '{self._stream_name}': {self.answered_by} answered {status}."
            return ErrorResolution(ResponseAction.IGNORE, FailureType.transient_error, message)
        advice, failure_type = self.client_error_advice()
        message = (
            f"{self.answered_by} answered {where(answer)} with {status}, which retrying will not change, so stream "
            f"'{self._stream_name}' stopped: {advice}"
        )
        return ErrorResolution(ResponseAction.FAIL, failure_type, message)


@dataclass
class ErrorPolicy(CompositeErrorHandler):
    """A requester's named handlers, asked in order, ending with its base policy (a LastWord), whose retries are the
    composition's: the CDK would take max_retries from the first handler and max_time from the longest of all (600 s
    for a handler that sets none)."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        if not isinstance(self.error_handlers[-1], LastWord):
            raise ValueError("An error policy ends with its base policy (a LastWord), which answers what nobody named")

    @property
    def max_retries(self) -> Optional[int]:
        return self.error_handlers[-1].max_retries

    @property
    def max_time(self) -> Optional[int]:
        return self.error_handlers[-1].max_time
