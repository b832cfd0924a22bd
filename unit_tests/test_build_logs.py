"""build_logs (source_codefresh/build_logs.py): the streamed archive reader, the per-step text, the URL rule, and a
mocked sync of the stream."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.test.mock_http import HttpRequest, HttpResponse

from source_codefresh.build_logs import (
    FIELDS_BYTES,
    BuildLogsRetriever,
    LogFormatError,
    StepText,
    read_log_steps,
)
from source_codefresh.transport import AnswerLimitExceeded
from unit_tests import builders as b
from unit_tests.conftest import (
    API,
    API_KEY,
    any_params,
    error_traces,
    log_lines,
    records_of,
    request,
    response,
    run_read,
    sent_requests,
)
from unit_tests.stream_cases import RECENT_ISO, recent, stream_failure

ESC = "\x1b"
STEPS = [
    {
        "name": "main_clone",
        "status": "success",
        "creationTimeStamp": 1761900000,
        "finishTimeStamp": 1761900012.5,
        "logs": [
            f"Cloning into 'api'...\n{ESC}[32mdone{ESC}[0m\n",
            "Zeit: 4,2 s — fertig ✔ 😀\n",
            None,
            "half a li",
            'ne with "quotes" and \\ and\ttab\n',
        ],
        "metrics": {"memory": [1, 2, 3]},
        "attempt": 1,
    },
    {
        "name": "build",
        "status": "error",
        "creationTimeStamp": 1761900013,
        "finishTimeStamp": 1761900100,
        "logs": ["Step 1/2 : RUN make\n", f"{ESC}[31m✖ failed{ESC}[0m\n"],
    },
]
TEXTS = {step["name"]: "".join(chunk for chunk in step["logs"] if chunk) for step in STEPS}


def archive(steps_shape: str, logs_shape: str) -> bytes:
    def step(s: Dict[str, Any]) -> Dict[str, Any]:
        logs = s["logs"] if logs_shape == "list" else {f"-N{n:018d}": chunk for n, chunk in enumerate(s["logs"])}
        return {**s, "logs": logs}

    steps: Any = [step(s) for s in STEPS]
    if steps_shape == "object":
        steps = {s["name"]: {k: v for k, v in step(s).items() if k != "name"} for s in STEPS}
    return json.dumps({"data": {"started": 1761900000, "finished": 1761900100}, "steps": steps}).encode()


def in_pieces(data: bytes, size: int) -> List[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


@pytest.mark.parametrize("steps_shape", ["list", "object"])
@pytest.mark.parametrize("logs_shape", ["list", "object"])
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 4096])
def test_both_shapes_give_each_step_its_whole_text_however_the_body_is_cut(steps_shape, logs_shape, piece):
    steps = list(read_log_steps(in_pieces(archive(steps_shape, logs_shape), piece), max_bytes=1024 * 1024))

    assert [s["step_name"] for s in steps] == ["main_clone", "build"]
    assert [s["step_index"] for s in steps] == [0, 1]
    assert {s["step_name"]: s["log"] for s in steps} == TEXTS, "chunks joined as stored, escapes and ANSI codes kept"
    first = steps[0]
    assert (first["status"], first["creationTimeStamp"], first["finishTimeStamp"]) == (
        "success",
        1761900000,
        1761900012.5,
    )
    assert first["log_size_bytes"] == len(TEXTS["main_clone"].encode()) and first["truncated"] is False
    assert first["attempt"] == 1 and "metrics" not in first, "other scalar fields pass, nested data does not"


def test_non_ascii_sent_raw_and_split_mid_character_is_read_the_same():
    raw = json.dumps({"steps": STEPS}, ensure_ascii=False).encode()
    steps = list(read_log_steps(in_pieces(raw, 1), max_bytes=1 << 20))
    assert {s["step_name"]: s["log"] for s in steps} == TEXTS


def test_a_surrogate_pair_escape_split_between_two_pieces_is_one_character():
    raw = b'{"steps":[{"name":"s","logs":["a\\ud83d\\ude00b"]}]}'
    cut = raw.index(b"\\ude00")
    steps = list(read_log_steps([raw[:cut], raw[cut:]], max_bytes=100))
    assert steps[0]["log"] == "a😀b" and steps[0]["log_size_bytes"] == 6


@pytest.mark.parametrize("limit", range(1, 40))
def test_text_is_cut_at_the_limit_on_a_character_boundary_and_the_whole_size_is_counted(limit):
    text = TEXTS["main_clone"]
    steps = list(read_log_steps(in_pieces(archive("list", "list"), 5), max_bytes=limit))
    kept = steps[0]["log"].encode()

    assert len(kept) <= limit and len(kept) > limit - 4, "cut at most one character before the limit"
    assert text.encode().startswith(kept)
    assert steps[0]["log_size_bytes"] == len(text.encode())
    assert steps[0]["truncated"] is (len(text.encode()) > limit)


def test_strip_ansi_removes_escape_codes_even_when_a_code_is_split_between_chunks():
    text = StepText(max_bytes=1000, strip_ansi=True)
    for piece in ["plain ", f"{ESC}[3", "2mgreen", f"{ESC}", "[0m, ", f"{ESC}]0;title{ESC}", "\\ end", f" {ESC}["]:
        text.add(piece)
    log, size, truncated = text.finish()
    assert log == f"plain green,  end {ESC}[" and size == len(log) and not truncated


def test_strip_ansi_applies_before_the_limit():
    steps = list(read_log_steps([archive("list", "list")], max_bytes=1 << 20, strip_ansi=True))
    assert ESC not in steps[0]["log"] + steps[1]["log"]
    assert steps[1]["log"] == "Step 1/2 : RUN make\n✖ failed\n"
    assert steps[1]["log_size_bytes"] == len(steps[1]["log"].encode())


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"steps":[{"name":"s","logs":["cut off',
        b'{"steps":[{"name":"s","logs":["\\x41"]}]}',
        b'{"steps":[{"name":"s" "logs":[]}]}',
        b"<Error><Code>AccessDenied</Code></Error>",
    ],
    ids=["empty", "not-an-object", "cut-off", "bad-escape", "missing-comma", "xml"],
)
def test_an_archive_that_is_not_the_expected_json_raises_a_format_error(body):
    with pytest.raises(LogFormatError):
        list(read_log_steps(in_pieces(body, 3), max_bytes=100))


def test_steps_that_are_not_objects_and_a_missing_steps_key_give_no_step():
    assert list(read_log_steps([b'{"data":{"x":[1,{"y":null}]}}'], 10)) == []
    steps = list(read_log_steps([b'{"steps":[null, 3, {"name":"ok","logs":"one string"}]}'], 100))
    assert [(s["step_name"], s["log"], s["step_index"]) for s in steps] == [("ok", "one string", 0)]


def test_a_steps_other_fields_are_kept_up_to_their_budget_and_the_rest_left_out():
    fields = ", ".join(f'"field_{n}": "{"F" * 30_000}"' for n in range(100))  # 3 MB of fields besides the log
    cut: List[Any] = []
    body = f'{{"steps": [{{"name": "fat", "status": "success", {fields}, "logs": ["ok"]}}]}}'.encode()

    (step,) = read_log_steps(in_pieces(body, 65536), 1024, fields_cut=cut.append)

    assert (step["step_name"], step["status"], step["log"]) == ("fat", "success", "ok")
    assert len(json.dumps(step)) < FIELDS_BYTES + 10_000 and "field_0" in step and "field_99" not in step
    assert cut == ["fat"]


def test_an_archive_nested_too_deep_is_a_format_error_not_a_recursion_error():
    body = b'{"steps": [{"name": "deep", "metrics": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    with pytest.raises(LogFormatError, match="nested more than"):
        list(read_log_steps(in_pieces(body, 65536), 1024))
    shallow = b'{"steps": [{"name": "ok", "metrics": ' + b"[" * 50 + b"]" * 50 + b', "logs": ["x"]}]}'
    assert [s["log"] for s in read_log_steps([shallow], 1024)] == ["x"]


class _Storage:
    """The log storage requester: each request answers the next body, streamed lazily; counts the bytes read."""

    def __init__(self, *bodies: Any) -> None:
        self.bodies, self.read = list(bodies), 0
        self.logger = None

    def send_request(self, **kwargs: Any) -> requests.Response:
        answer = requests.Response()
        answer.status_code, answer.url = 200, "https://storage.googleapis.com/logs/a.json"
        body = self.bodies.pop(0)
        storage = self

        class Raw:
            def stream(self, amt: int, decode_content: bool = True) -> Any:
                for chunk in body() if callable(body) else [body]:
                    if isinstance(chunk, Exception):
                        raise chunk
                    storage.read += len(chunk)
                    yield chunk

            def close(self) -> None:
                pass

        answer.raw = Raw()
        return answer


def _logs_retriever(storage: _Storage) -> BuildLogsRetriever:
    return BuildLogsRetriever(
        listing=None, requester=None, record_selector=None, config={}, parameters={}, storage_requester=storage
    )


def _many_steps(count: int) -> Any:
    yield b'{"steps": ['
    for number in range(count):
        yield (b"," if number else b"") + json.dumps({"name": f"s{number}", "logs": ["x" * 1000]}).encode()
    yield b"]}"


def test_a_log_is_read_and_emitted_step_by_step():
    storage = _Storage(lambda: _many_steps(100_000))
    records = _logs_retriever(storage)._read_archive(
        "b1", StreamSlice(partition={}, cursor_slice={}, extra_fields={"log_url": "https://x/a.json"})
    )

    first = [next(records) for _ in range(10)]

    assert [r["step_name"] for r in first] == [f"s{n}" for n in range(10)]
    assert storage.read < 200_000  # of about 100 MB: the rest is read when the records are taken
    records.close()


def test_a_log_cut_off_on_the_way_is_read_again_from_the_first_step_not_emitted(caplog):
    whole = archive("list", "list")
    cut = [whole[:300], requests.exceptions.ChunkedEncodingError("cut off")]
    storage = _Storage(lambda: iter(cut), whole)

    records = list(
        _logs_retriever(storage)._read_archive(
            "b1", StreamSlice(partition={}, cursor_slice={}, extra_fields={"log_url": "https://x/a.json"})
        )
    )

    assert [r["step_name"] for r in records] == ["main_clone", "build"]  # each step once


def test_a_log_past_the_storage_limits_is_skipped_with_one_line(caplog):
    def too_large() -> Any:
        yield b'{"steps": [{"name": "one", "logs": ["x"]}, {"name": "two", "logs": ["'
        raise AnswerLimitExceeded(
            "passed 1,024 MB once decompressed", message="m", failure_type=FailureType.system_error
        )

    records = list(
        _logs_retriever(_Storage(too_large))._read_archive(
            "b1",
            StreamSlice(partition={}, cursor_slice={}, extra_fields={"log_url": "https://x/a.json?Signature=s"}),
        )
    )

    assert [r["step_name"] for r in records] == ["one"]
    (line,) = [r.getMessage() for r in caplog.records if "Skipping" in r.getMessage()]
    assert line == (
        "Skipping the rest of the log of build b1 in stream 'build_logs': passed 1,024 MB once decompressed; the "
        "steps read before that (1) are synced."
    )


# --- a mocked sync -----------------------------------------------------------------------------------------------
STORAGE = "https://storage.googleapis.com/cf-build-logs/acct"


def _mock_sync(
    http_mocker, storage_url: str = STORAGE, body: bytes = b"", storage_status: int = 200, bodies: Sequence[bytes] = ()
) -> List[Dict[str, Any]]:
    """A listing of a finished and a running build; the finished one's progress job and its archive."""
    done, running = b.build(1, recent(10)), b.build(2, recent(11), status="running")
    running["finished"] = None
    http_mocker.get(any_params("workflow"), response(b.cursor_page([running, done], 1, False, "workflows")))
    signed = f"{storage_url}/{done['progress']}.json?X-Goog-Credential=a%2Fb&X-Goog-Signature=c0ffee"
    http_mocker.get(
        request(f"progress/{done['progress']}"),
        response({"_id": done["progress"], "location": {"type": "gcs", "url": signed}}),
    )
    if storage_url.startswith("https://"):
        answers = [HttpResponse(text.decode(), storage_status) for text in bodies or [body]]
        http_mocker.get(HttpRequest(signed), answers if len(answers) > 1 else answers[0])
    return [done, running]


def test_a_sync_reads_the_finished_build_only_and_sends_no_key_to_the_storage_host(http_mocker):
    done, running = _mock_sync(http_mocker, body=archive("object", "list"))

    records = records_of(run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True))

    assert [(r["build_id"], r["step_name"]) for r in records] == [(done["id"], "main_clone"), (done["id"], "build")]
    assert records[0]["build_created"] == done["created"] and records[0]["log"] == TEXTS["main_clone"]
    assert not [s for s in sent_requests(http_mocker) if running["progress"] in s["path"]], "running: no request"
    storage = [item for item in http_mocker.requests.request_history if item.url.startswith(STORAGE)]
    assert len(storage) == 1 and "Authorization" not in storage[0].headers
    assert "X-Goog-Credential=a%2Fb" in storage[0].url, "the signed URL is sent exactly as Codefresh gave it"
    api = [item for item in http_mocker.requests.request_history if item.url.startswith(API)]
    assert len(api) == 2 and all(item.headers.get("Authorization") == API_KEY for item in api)


@pytest.mark.parametrize(
    "status, body",
    [
        (403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),  # S3-style
        (400, b"<Error><Code>ExpiredToken</Code><Message>Invalid argument.</Message></Error>"),  # GCS, which SaaS uses
    ],
    ids=["403_access_denied", "400_expired_token"],
)
def test_an_expired_signed_url_skips_that_log_with_one_line_that_does_not_quote_the_signature(
    http_mocker, status, body
):
    _mock_sync(http_mocker, body=body, storage_status=status)

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True)

    assert records_of(output) == [] and not error_traces(output)
    lines = [line for line in log_lines(output) if "refused its signed URL" in line]
    assert len(lines) == 1 and "c0ffee" not in str(log_lines(output))


def test_a_log_url_over_plain_http_to_another_host_is_refused_before_any_request(http_mocker):
    _mock_sync(http_mocker, storage_url="http://minio.internal:9000/logs")  # no mock: a request would fail the test

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True, expect_failure=True)

    errors = error_traces(output)
    assert errors and errors[0].failure_type == FailureType.config_error
    assert "does not use https" in errors[0].message and "c0ffee" not in errors[0].message


def test_a_body_that_does_not_parse_is_read_again(http_mocker):
    whole = archive("list", "list")
    _mock_sync(http_mocker, bodies=[whole[: len(whole) // 2], whole])

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True)

    assert [r["step_name"] for r in records_of(output)] == ["main_clone", "build"], "the second read is whole"
    assert len([line for line in log_lines(output) if "Reading the log of build" in line]) == 1


def test_an_archive_that_never_parses_is_skipped_after_three_reads_with_one_warning(http_mocker):
    cut = archive("list", "list")[:100]
    _mock_sync(http_mocker, bodies=[cut, cut, cut])

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True)

    assert records_of(output) == [] and not error_traces(output)
    skipped = [line for line in log_lines(output) if "Skipping the log of build" in line]
    assert len(skipped) == 1 and "read 3 times" in skipped[0] and "c0ffee" not in skipped[0]


def test_a_connection_that_breaks_on_every_read_fails_the_sync_as_transient_without_the_signature(http_mocker, mocker):
    whole = archive("list", "list")
    _mock_sync(http_mocker, bodies=[whole, whole, whole])
    real_iter_content = requests.Response.iter_content

    def breaks_at_the_storage_host(self, *args, **kwargs):
        if not self.url.startswith(STORAGE):
            yield from real_iter_content(self, *args, **kwargs)
            return
        yield whole[:40]
        raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")

    mocker.patch.object(requests.Response, "iter_content", breaks_at_the_storage_host)

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True, expect_failure=True)

    assert records_of(output) == []
    failure = next(trace for trace in error_traces(output) if "could not be read" in trace.message)
    assert failure.failure_type == FailureType.transient_error
    assert "in 3 attempts" in failure.message and "ChunkedEncodingError" in failure.message
    assert "c0ffee" not in failure.message and "c0ffee" not in str(log_lines(output))
    storage = [item for item in http_mocker.requests.request_history if item.url.startswith(STORAGE)]
    assert len(storage) == 3


def test_a_storage_that_keeps_failing_fails_the_stream_saying_what_to_do_without_the_signature(http_mocker, slept):
    _mock_sync(http_mocker, body=b"<html>Service Unavailable</html>", storage_status=503)

    output = run_read("build_logs", start_date=RECENT_ISO, sync_build_logs=True, expect_failure=True)

    assert records_of(output) == []
    failure = stream_failure(output, "build_logs")
    assert failure.failure_type == FailureType.transient_error
    assert failure.message.startswith(
        "Stream 'build_logs': Codefresh kept failing through every retry (up to 5 minutes"
    )
    assert "build log storage answered with a server error" in failure.message
    assert "Exhausted available request attempts" not in failure.message
    assert "c0ffee" not in failure.message and "c0ffee" not in str(log_lines(output))
