"""The connector: the declarative manifest, loaded from this package's own location, plus the checks of a config
that JSON schema cannot express (answered in one sentence, before any request is sent), the secrets masked in every
form a message can show them in, and the one place where an error nothing else explained becomes one sentence."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterator, List, Mapping, Optional, Set
from urllib.parse import quote, quote_plus, urlsplit

import requests
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    FailureType,
    Status,
    TraceType,
    Type,
)
from airbyte_cdk.models import Type as MessageType
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets, filter_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.access import one_read
from source_codefresh.custom_streams import builtin_stream_names, custom_streams_problem
from source_codefresh.paging import ISSUE_TRACKER
from source_codefresh.spec import default, manifest_path
from source_codefresh.state import ComponentFactory
from source_codefresh.transport import RefusedUrl, get_user, url_problem

# check's connectivity probe: fail fast on an unreachable host instead of retrying for minutes.
_PROBE_TIMEOUT = (10, 30)


def _parse_datetime(value: str) -> Optional[datetime]:
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def config_problem(config: Mapping[str, Any]) -> Optional[str]:
    """The first thing wrong with a config, as one sentence that says what to do; None when it is usable.

    The CDK's entrypoint checks the config against the spec (types, bounds, enums); these are the checks it cannot
    make."""
    api_key = config.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        return "api_key is empty: paste a Codefresh API key (Codefresh > User Settings > API Keys)."
    if api_key.strip().lower().startswith("bearer "):
        return "api_key starts with 'Bearer ': paste the key alone, Codefresh expects it without that prefix."
    if any(char.isspace() for char in api_key.strip()):
        return "api_key contains spaces or line breaks: paste the key exactly as Codefresh shows it."
    strange = next((number for number, char in enumerate(api_key.strip(), 1) if not ("!" <= char <= "~")), None)
    if strange is not None:
        # A Codefresh key is plain ASCII; an invisible character (a zero-width space) comes from a copy and paste.
        return (
            f"api_key has an invisible or non-ASCII character (character {strange}): type or paste the key again "
            "exactly as Codefresh shows it."
        )

    base_url = str(config.get("base_url") or default("base_url")).strip()
    try:
        parts = urlsplit(base_url)
        well_formed = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # `http://[::1/api`, two ports
        well_formed = False
    if not well_formed:
        # Not quoted: a malformed value may still hold a password (`user:secret@host/api` has no scheme).
        return (
            f"base_url is not a URL with https:// and a host name: use {default('base_url')}, or "
            "https://<your-host>/api for an on-premises installation."
        )
    # Before any message that quotes base_url: credentials in it are not repeated in the output.
    if parts.query or parts.fragment or parts.username or parts.password:
        return (
            f"base_url must be the API root only, without credentials, '?' or '#': for example {default('base_url')}."
        )
    problem = url_problem(base_url, private_ok=True)  # an on-premises installation may be on a private network
    if problem:
        return (
            f"base_url '{base_url}' {problem}, so the connector does not send the API key there: use "
            f"{default('base_url')}, or https://<your-host>/api for an on-premises installation."
        )

    start_date = config.get("start_date")
    if start_date not in (None, ""):
        parsed = _parse_datetime(str(start_date))
        if parsed is None:
            return (
                f"start_date '{start_date}' is not an ISO-8601 date-time: use for example 2025-01-01T00:00:00Z, "
                "or leave it empty to sync the whole history."
            )
        if parsed > datetime.now(timezone.utc):
            return f"start_date '{start_date}' is in the future, so nothing would be synced: use a past date."

    for number, run in enumerate(config.get("pipeline_runs") or [], start=1):
        pipeline = str((run or {}).get("pipeline") or "").strip() if isinstance(run, Mapping) else ""
        if not re.fullmatch(r"[^/\s][^/]*/.+", pipeline):
            return (
                f"pipeline_runs entry {number}: pipeline '{pipeline}' is not a full pipeline name: use "
                "project/pipeline as Codefresh shows it."
            )
    return custom_streams_problem(config, base_url.rstrip("/"), builtin_stream_names())


def _config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


class SourceCodefresh(YamlDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path_to_yaml=str(manifest_path()),
            catalog=catalog,
            config=config,
            state=state,
            config_path=config_path,
        )
        # The CDK's factory builds every component; ours also builds the cursors of the builds streams and of
        # pipeline_runs (source_codefresh/state.py says why they cannot be declared). Nothing but the spec and the
        # concurrency level has been built yet, and the message repository stays the same object. The CDK offers no
        # argument for a factory: `_constructor` is private, pinned in unit_tests/test_cdk_contract.py.
        self._constructor = ComponentFactory(
            message_repository=self._constructor.get_message_repository(),
            connector_state_manager=ConnectorStateManager(state=state or []),
            configured_catalog=catalog,
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        mask_secret_forms(config)
        try:
            problem = config_problem(config) or self._unreachable(config)
            if problem is not None:
                return AirbyteConnectionStatus(status=Status.FAILED, message=problem)
            # GET /user through the manifest's requester and error policy.
            status = super().check(logger, config)
        except Exception as error:  # a check always answers with a status, in one sentence
            return AirbyteConnectionStatus(status=Status.FAILED, message=unexpected(error, "").message)
        if status.status == Status.FAILED and status.message:
            status.message = _plain_check_message(status.message)
        return status

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        mask_secret_forms(config)
        self._raise_on_config_problem(config)
        try:
            return super().discover(logger, config)
        except Exception as error:
            raise unexpected(error, "") from error

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> Iterator[AirbyteMessage]:
        mask_secret_forms(config)
        self._raise_on_config_problem(config)
        failed: List[str] = []
        try:
            # The streams built for this read share what it learns of the key (a skipped scope, a restricted key),
            # and only they: a stream that failed in an earlier read through this source fails again, not empty.
            with one_read():
                for message in self._read(logger, config, catalog, state):
                    yield explained(message, failed)
        except AirbyteTracedException as error:
            if not failed or not str(error.message or "").startswith(_CDK_STREAMS_FAILED):
                raise
            # The CDK's last words repeat each stream's exception as Python shows it (repr), which may quote a
            # value of the config in a form the secret filter does not know; each stream's error said it already.
            said = (
                f"These streams did not sync: {', '.join(failed)}; the error of each, above, says why and what to do."
            )
            raise AirbyteTracedException(message=said, internal_message=said, failure_type=error.failure_type) from None

    def _read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]],
    ) -> Iterator[AirbyteMessage]:
        # Only the catalog's streams are built (their parents are built inside them), not all of the manifest's: that
        # is about 0.7 s of start-up, and a stream that is not synced cannot fail the sync (e.g. on its saved state).
        # `_streams_by_name` is how the CDK's own CheckStream builds its streams; it answers None when a name is not a
        # static stream of the manifest, and then every stream is built as the CDK's read does. Both it and
        # `_concurrent_source` are private: unit_tests/test_cdk_contract.py pins them.
        names = [configured.stream.name for configured in catalog.streams]
        streams = self._streams_by_name(names)
        if streams is None:
            yield from _flushing_states(super().read(logger, config, catalog, state))
            return
        # In the catalog's order, as the CDK's own read (`_select_streams`) orders them.
        by_name = {stream.name: stream for stream in streams}
        yield from _flushing_states(self._concurrent_source.read([by_name[name] for name in names]))

    @staticmethod
    def _raise_on_config_problem(config: Mapping[str, Any]) -> None:
        problem = config_problem(config)
        if problem is not None:
            raise _config_error(problem)

    @staticmethod
    def _unreachable(config: Mapping[str, Any]) -> Optional[str]:
        """One quick GET /user to tell an unreachable base_url apart at once (the sync itself retries for minutes)."""
        base_url = str(config.get("base_url") or default("base_url")).strip().rstrip("/")
        try:
            for attempt in range(2):  # one retry: a single dropped connection is not an unreachable host
                try:
                    get_user(config, _PROBE_TIMEOUT)
                    break
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                    if attempt or isinstance(error, requests.exceptions.SSLError):
                        raise
                    time.sleep(1)
        except RefusedUrl as refused:
            return refused.message
        except requests.exceptions.SSLError:
            return (
                f"The TLS certificate of {base_url} could not be verified: check base_url, or the host's certificate."
            )
        except requests.exceptions.Timeout:
            return f"{base_url} did not answer within {_PROBE_TIMEOUT[1]} seconds: check base_url and the network path."
        except requests.exceptions.RequestException:
            return f"Could not connect to {base_url}: check base_url and that this machine can reach the host."
        return None


# How the CDK words an exception of a stream that is not an AirbyteTracedException
# (concurrent_read_processor.py `on_exception`), and its last error after failed streams (exception_handler.py
# `generate_failed_streams_error_message`); unit_tests/test_cdk_contract.py pins both.
_CDK_UNEXPECTED = "An unexpected error occurred in stream "
_CDK_STREAMS_FAILED = "During the sync, the following streams did not sync successfully"


def unexpected(error: BaseException, stream: str) -> AirbyteTracedException:
    """Any exception as one sentence that names the stream (none: the command) and says what to do; an
    AirbyteTracedException already is one."""
    if isinstance(error, AirbyteTracedException):
        return error
    message = unexpected_sentence(stream, type(error).__name__, str(error))
    return AirbyteTracedException(message=message, internal_message=str(error), failure_type=FailureType.system_error)


def unexpected_sentence(stream: str, kind: str, detail: str) -> str:
    what = f"Stream '{stream}'" if stream else "The connector"
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return filter_secrets(
        f"{what} stopped on an answer it could not read ({kind}{': ' + detail if detail else ''}): run the sync "
        f"again, and if it stops the same way, report it at {ISSUE_TRACKER} with this message."
    )


def explained(message: AirbyteMessage, failed: List[str]) -> AirbyteMessage:
    """A stream's error as one sentence that names the stream and says what to do, with the secrets masked in its
    every field (the CDK emits a stream's error unmasked); any other message as it is."""
    trace = message.trace if message.type == MessageType.TRACE else None
    error = trace.error if trace is not None and trace.type == TraceType.ERROR else None
    if error is None:
        return message
    stream = error.stream_descriptor.name if error.stream_descriptor else ""
    if stream and stream not in failed:
        failed.append(stream)
    if str(error.message or "").startswith(_CDK_UNEXPECTED):
        error.message = unexpected_sentence(
            stream, str(error.message).rsplit(": ", 1)[-1], error.internal_message or ""
        )
    for field in ("message", "internal_message", "stack_trace"):
        value = getattr(error, field)
        if value:
            setattr(error, field, filter_secrets(value))
    return message


def mask_secret_forms(config: Mapping[str, Any]) -> None:
    """Adds to the CDK's secret filter the forms the API key takes in a message besides itself: as Python and JSON
    escape it (a key with an odd character, quoted in an exception), URL-encoded, and its secret half (after the
    dot). The CDK's entry point sets the filter to the config's secrets before each command; this adds to it."""
    key = config.get("api_key")
    if not isinstance(key, str) or not key.strip():
        return
    forms: Set[str] = set()
    for secret in {key, key.strip(), key.strip().split(".", 1)[-1]}:
        if len(secret) < 8:
            continue
        escaped = repr(secret)[1:-1]
        forms.update(
            {
                secret,
                escaped,
                json.dumps(secret)[1:-1],
                json.dumps(escaped)[1:-1],
                secret.encode("unicode_escape").decode("ascii"),
                quote(secret, safe=""),
                quote_plus(secret),
            }
        )
    for form in sorted(forms, key=len, reverse=True):
        add_to_secrets(form)


def _flushing_states(messages: Iterator[AirbyteMessage]) -> Iterator[AirbyteMessage]:
    """Each state message is pushed out once printed. The entrypoint prints a message before it asks for the next, into
    the CDK's print buffer, which writes only when a later print comes 0.1 s after its last write: a checkpoint (the
    build pipeline_runs started, before hours of polling) would otherwise wait there for the next message."""
    for message in messages:
        yield message
        if message.type == Type.STATE:
            sys.stdout.flush()


def _plain_check_message(message: str) -> str:
    """The CDK's check says "Stream current_user is not available: '<reason>'"; the user needs only the reason."""
    reason = message.strip()
    for _ in range(2):  # the CDK may quote the whole message (repr) and the reason inside it
        if len(reason) >= 2 and reason[0] == reason[-1] and reason[0] in "'\"":
            reason = reason[1:-1]
        reason = re.sub(r"^Stream \w+ is not available: ", "", reason)
    return reason.replace("\\'", "'")
