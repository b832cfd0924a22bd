"""The source's own parts (source_codefresh/source.py, run.py): config problems in one sentence before any request,
a check that always answers with a status, one sentence for an error nothing else explained, and the API key masked
in every form a message can show it in."""

from __future__ import annotations

import json
import logging

import pytest
from airbyte_cdk.entrypoint import launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteTraceMessage,
    FailureType,
    Status,
    StreamDescriptor,
    TraceType,
    Type,
)
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets

from source_codefresh.run import _get_source
from source_codefresh.source import SourceCodefresh, config_problem, explained, mask_secret_forms
from source_codefresh.transport import LOOPBACK_SWITCH
from unit_tests.conftest import API_KEY, error_traces, response, run_read

ZERO_WIDTH_KEY = API_KEY[:20] + "\u200b" + API_KEY[20:]


def test_a_key_with_an_invisible_character_is_refused_without_quoting_it():
    problem = config_problem({"api_key": ZERO_WIDTH_KEY}) or ""
    assert problem.startswith("api_key has an invisible or non-ASCII character (character 21)")
    assert API_KEY[20:] not in problem


@pytest.mark.parametrize("base_url", ["http://[::1/api", "https://g.codefresh.io:1:2/api", "https://:443/api"])
def test_a_base_url_that_does_not_parse_is_refused_in_one_sentence(base_url):
    assert (config_problem({"api_key": API_KEY, "base_url": base_url}) or "").startswith("base_url is not a URL")


@pytest.mark.parametrize(
    "base_url, refused_because",
    [
        ("http://localhost:8765/api", "does not use https"),
        ("https://127.0.0.1/api", "this machine's own address"),
        ("https://169.254.169.254/api", "link-local"),
        ("https://10.0.0.5/api", None),  # an on-premises installation on a private network
    ],
)
def test_base_url_follows_the_url_policy_outside_the_test_harness(monkeypatch, base_url, refused_because):
    monkeypatch.delenv(LOOPBACK_SWITCH, raising=False)
    problem = config_problem({"api_key": API_KEY, "base_url": base_url})
    if refused_because is None:
        assert problem is None
    else:
        assert problem and problem.startswith(f"base_url '{base_url}' ") and refused_because in problem


def _launched(capsys, command: str, config: dict, tmp_path) -> list:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    args = [command, "--config", str(path)]
    source = _get_source(args)
    assert source is not None, "a config with a problem still starts the connector"
    launch(source, args)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("num_workers", [-3, 2.5])
def test_check_answers_a_config_the_streams_cannot_be_built_from_with_a_failed_status(capsys, tmp_path, num_workers):
    messages = _launched(capsys, "check", {"api_key": API_KEY, "num_workers": num_workers}, tmp_path)
    statuses = [m["connectionStatus"] for m in messages if m["type"] == "CONNECTION_STATUS"]
    assert len(statuses) == 1 and statuses[0]["status"] == "FAILED"
    assert str(num_workers) in statuses[0]["message"]


def test_check_turns_an_unexpected_error_into_a_failed_status_in_one_sentence(mocker):
    mocker.patch("source_codefresh.source.SourceCodefresh._unreachable", return_value=None)
    mocker.patch(
        "airbyte_cdk.sources.declarative.yaml_declarative_source.YamlDeclarativeSource.check",
        side_effect=TypeError("'int' object is not subscriptable"),
    )
    config = {"api_key": API_KEY}
    status = SourceCodefresh(config=config).check(logging.getLogger("airbyte"), config)
    assert status.status == Status.FAILED
    assert status.message.startswith("The connector stopped on an answer it could not read (TypeError: 'int' object")
    assert "report it at" in status.message


def _trace(message: str, internal: str, stream: str = "agents") -> AirbyteMessage:
    return AirbyteMessage(
        type=Type.TRACE,
        trace=AirbyteTraceMessage(
            type=TraceType.ERROR,
            emitted_at=0,
            error=AirbyteErrorTraceMessage(
                message=message,
                internal_message=internal,
                stack_trace=f"Traceback ...\n{internal}",
                failure_type=FailureType.system_error,
                stream_descriptor=StreamDescriptor(name=stream),
            ),
        ),
    )


def test_the_cdks_words_for_an_unexpected_stream_error_become_one_sentence_with_secrets_masked():
    update_secrets([API_KEY])
    failed: list = []
    message = explained(_trace("An unexpected error occurred in stream agents: TypeError", f"bad {API_KEY!r}"), failed)
    error = message.trace.error
    assert error.message.startswith("Stream 'agents' stopped on an answer it could not read (TypeError: bad ")
    assert "run the sync again" in error.message
    for text in (error.message, error.internal_message, error.stack_trace):
        assert API_KEY not in text
    assert failed == ["agents"]
    ours = explained(_trace("Stream 'x': our own sentence.", "internal", "views"), failed).trace.error
    assert ours.message == "Stream 'x': our own sentence." and failed == ["agents", "views"]


def test_a_stream_that_fails_on_an_answer_nothing_explained_says_so_in_one_sentence(http_mocker):
    from unit_tests.conftest import request

    http_mocker.get(request("environments-v2"), response({"docs": [{"_id": "e1", "spec": {}}]}))

    output = run_read("environments", expect_failure=True)

    messages = [error.message for error in error_traces(output)]
    assert messages[0].startswith(
        "Stream 'environments' stopped on an answer it could not read (UndefinedError: 'dict object' has no "
        "attribute 'metadata')"
    )
    assert messages[-1] == (
        "These streams did not sync: environments; the error of each, above, says why and what to do."
    )


def test_every_form_of_the_key_a_message_can_show_is_masked():
    config = {"api_key": ZERO_WIDTH_KEY}
    update_secrets([ZERO_WIDTH_KEY])  # what the CDK's entry point registers: the key as it is
    mask_secret_forms(config)
    escaped = repr(ZERO_WIDTH_KEY)  # as an exception's repr quotes it
    for shown in (escaped, json.dumps(escaped), json.dumps(ZERO_WIDTH_KEY), ZERO_WIDTH_KEY.split(".", 1)[1]):
        assert API_KEY[21:] not in filter_secrets(f"UnicodeEncodeError('latin-1', {shown}, 20, 21)"), shown
