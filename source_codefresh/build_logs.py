"""build_logs (opt-in with `sync_build_logs`): each finished build's archived log, one record per step.

Per listed build (the per-build fan-out of per_build.py, `num_workers` at a time):
1. a build that has not finished (state.py `build_finished`) has no archived log yet: it is skipped without a
   request, and the cursor follows it until a later sync finds it finished;
2. `GET /progress/{progress}` (the manifest's requester: the API key, the error policy, the rate budget) names the
   log's `location`; a `firebase` location is a live log, not an archive, and is skipped the same way;
3. `GET <location.url>`, the signed storage URL, through the manifest's `log_storage_requester`: no authenticator,
   so the API key never reaches the storage host, the same rate budget, and the URL policy and answer limits of
   every request (transport.py: https from an address the policy accepts, redirects too; a log larger than the
   storage cap or slower than its deadline is skipped with one line). The body is streamed and parsed as it arrives
   (`read_log_steps`), and each step is emitted as soon as it is read: the text kept per step stops at
   `build_logs_max_kb_per_step`, the step's other fields at FIELDS_BYTES in all, the rest is only counted, so memory
   stays flat however large the log is and however many steps it has.

The archive is `{"data": {...}, "steps": [...] | {name: step}}`, each step `{name, status, creationTimeStamp,
finishTimeStamp (epoch seconds), logs: [...] | {key: chunk}}`; a step's text is its chunks joined as they are (the
chunks are pieces of the step's output and carry their own line breaks).
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Union

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.per_build import PerBuildRetriever
from source_codefresh.responses import response_json, url_without_query
from source_codefresh.retries import send_explaining_spent_retries
from source_codefresh.state import build_finished
from source_codefresh.transport import AnswerLimitExceeded, quiet_http_log

logger = logging.getLogger("airbyte")

READ_CHUNK_BYTES = 64 * 1024
BODY_READ_ATTEMPTS = 3  # a body cut off mid-way is fetched again (a fresh request) this many times in all
FIELD_CHARS = 64 * 1024  # a step's other string fields (name, status, ...) are cut at this many characters
FIELDS_BYTES = 64 * 1024  # ... and kept while they hold this many in all (names included); the rest are left out
MAX_DEPTH = 64  # a value nested deeper than this is not a build log (skipped with one line, not a RecursionError)


# ---------------------------------------------------------------------------------------------------------------
# the streamed JSON reader
# ---------------------------------------------------------------------------------------------------------------
# Not ijson (a CDK dependency): ijson hands over each string value whole, and a step's `logs` may be one huge string.
# Measured on one 50 MB string (yajl2_c backend): ijson's peak memory grew by about 146 MB and the read took 91 s;
# this reader's peak stayed within 1 MB of a 1 MB log's, and the read took about 11 s.
class LogFormatError(ValueError):
    """The archive is not the JSON we expect (or is cut off)."""


_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Complete characters and escapes of a JSON string; stops before `"`, before an escape cut off by the end of the
# buffer, and before an invalid escape.
_STRING_RUN = re.compile(r'(?:[^"\\]+|\\u[0-9a-fA-F]{4}|\\[^u])*')
_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
_SCALAR_MAX_CHARS = 1024
_NUMBER_CHARS = frozenset("0123456789.eE+-")  # a number that reaches one of these may go on in the next chunk
# The C scanner of the json module: decodes the escapes of a run at C speed (not in the type stubs).
_decode_run: Callable[[str, int, bool], Tuple[str, int]] = getattr(json.decoder, "scanstring")  # noqa: B009


def _decode(raw: str) -> str:
    try:
        return _decode_run(raw + '"', 0, False)[0]
    except ValueError as exc:
        raise LogFormatError(f"an invalid string ({exc})") from None


def _match_end(pattern: "re.Pattern[str]", text: str, pos: int) -> int:
    """Where a pattern that may match nothing (`...*`) stops matching from `pos`."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


def _join_surrogates(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


class _JsonStream:
    """A pull reader over a JSON document that arrives in byte chunks; only what the caller keeps is held."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _more(self) -> bool:
        """Appends the next chunk to what is left of the buffer; False at the end of the document."""
        while not self.eof:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                text = self._utf8.decode(b"", final=True)
            else:
                text = self._utf8.decode(chunk)
            if text:
                self.buf = self.buf[self.pos :] + text
                self.pos = 0
                return True
        return False

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), without consuming it."""
        while True:
            self.pos = _match_end(_WHITESPACE, self.buf, self.pos)
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def _expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise LogFormatError(f"expected {char!r}, found {found or 'the end of the document'!r}")
        self.pos += 1

    def string_pieces(self) -> Iterator[str]:
        """The decoded text of the string at the cursor, piece by piece as it arrives."""
        self._expect('"')
        carry = ""  # a high surrogate whose low half is in the next piece
        while True:
            end = _match_end(_STRING_RUN, self.buf, self.pos)
            closed = end < len(self.buf) and self.buf[end] == '"'
            if not closed and end < len(self.buf) and (len(self.buf) - end >= 12 or self.eof):
                raise LogFormatError(f"an invalid escape {self.buf[end : end + 6]!r} in a string")
            text = _decode(self.buf[self.pos : end]) if end > self.pos else ""
            self.pos = end
            if carry:
                text, carry = _join_surrogates(carry + text), ""
            if closed:
                self.pos += 1
                if text:
                    yield text
                return
            if text and "\ud800" <= text[-1] <= "\udbff":
                text, carry = text[:-1], text[-1]
            if text:
                yield text
            if not self._more():
                raise LogFormatError("the document ends inside a string")

    def small_string(self, max_chars: int) -> str:
        kept: List[str] = []
        room = max_chars
        for piece in self.string_pieces():
            if room > 0:
                kept.append(piece[:room])
                room -= len(kept[-1])
        return "".join(kept)

    def scalar(self) -> Any:
        """A number, true, false or null."""
        while True:
            self.peek()
            match = _SCALAR.match(self.buf, self.pos)
            if match and (self.eof or (match.end() < len(self.buf) and self.buf[match.end()] not in _NUMBER_CHARS)):
                self.pos = match.end()
                return json.loads(match.group())
            if len(self.buf) - self.pos > _SCALAR_MAX_CHARS or (not match and len(self.buf) - self.pos >= 5):
                raise LogFormatError(f"an unexpected value starting {self.buf[self.pos : self.pos + 20]!r}")
            if not self._more():
                if match:
                    continue  # eof is set now: the match is complete
                raise LogFormatError("the document ends inside a value")

    def _members(self, opening: str, closing: str, what: str) -> Iterator[None]:
        """One step per member of the object or array at the cursor, then the separator after it is read."""
        self._expect(opening)
        if self.peek() == closing:
            self.pos += 1
            return
        while True:
            yield None
            following = self.peek()
            self.pos += 1
            if following == closing:
                return
            if following != ",":
                raise LogFormatError(f"expected ',' or {closing!r} after {what}, found {following or 'the end'!r}")

    def object_keys(self) -> Iterator[str]:
        """The keys of the object at the cursor; after each key the caller reads (or skips) its value."""
        for _ in self._members("{", "}", "a value"):
            if self.peek() != '"':
                raise LogFormatError("an object key that is not a string")
            key = self.small_string(FIELD_CHARS)
            self._expect(":")
            yield key

    def array_items(self) -> Iterator[None]:
        """One step per item of the array at the cursor; the caller reads (or skips) each item."""
        return self._members("[", "]", "an item")

    def skip(self, depth: int = 0) -> None:
        """Reads past the value at the cursor, keeping nothing."""
        if depth > MAX_DEPTH:
            raise LogFormatError(f"a value nested more than {MAX_DEPTH} levels deep")
        char = self.peek()
        if char == '"':
            for _ in self.string_pieces():
                pass
        elif char == "{":
            for _ in self.object_keys():
                self.skip(depth + 1)
        elif char == "[":
            for _ in self.array_items():
                self.skip(depth + 1)
        else:
            self.scalar()


# ---------------------------------------------------------------------------------------------------------------
# one step's text
# ---------------------------------------------------------------------------------------------------------------
# ANSI escape sequences: CSI (colours, cursor moves), OSC (window titles, links) and the two-character ones.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# The start of a sequence that the end of a piece cut off (held back until the next piece).
_ANSI_CUT_OFF = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07]*)?\Z")
_ANSI_HOLD_MAX = 4096


class StepText:
    """A step's log text as it arrives: the first `max_bytes` UTF-8 bytes are kept (cut on a character boundary),
    every byte is counted."""

    def __init__(self, max_bytes: int, strip_ansi: bool):
        self.max_bytes = max_bytes
        self.strip_ansi = strip_ansi
        self._kept: List[bytes] = []
        self._kept_bytes = 0
        self._held = ""
        self.size = 0
        self.truncated = False

    def add(self, piece: str) -> None:
        if self.strip_ansi:
            text = self._held + piece
            cut_off = _ANSI_CUT_OFF.search(text, max(0, len(text) - _ANSI_HOLD_MAX))
            if cut_off:
                text, self._held = text[: cut_off.start()], text[cut_off.start() :]
            else:
                self._held = ""
            piece = _ANSI.sub("", text)
        self._count(piece)

    def _count(self, piece: str) -> None:
        if not piece:
            return
        data = piece.encode("utf-8", "replace")  # a lone surrogate (a broken \u escape) becomes '?'
        self.size += len(data)
        if self.truncated:
            return
        room = self.max_bytes - self._kept_bytes
        if len(data) <= room:
            self._kept.append(data)
            self._kept_bytes += len(data)
            return
        cut = room
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # not inside a multi-byte character
            cut -= 1
        self._kept.append(data[:cut])
        self._kept_bytes += cut
        self.truncated = True

    def finish(self) -> Tuple[str, int, bool]:
        """(the kept text, the size of the whole text in bytes, whether the text was cut)."""
        if self._held:
            held, self._held = self._held, ""
            self._count(_ANSI.sub("", held))
        return b"".join(self._kept).decode("utf-8"), self.size, self.truncated


# ---------------------------------------------------------------------------------------------------------------
# the archive: steps
# ---------------------------------------------------------------------------------------------------------------
def read_log_steps(
    chunks: Iterable[bytes],
    max_bytes: int,
    strip_ansi: bool = False,
    fields_cut: Callable[[Optional[str]], None] = lambda step: None,
) -> Iterator[Dict[str, Any]]:
    """The steps of a log archive that arrives in byte chunks, one dict per step as soon as it is read:
    `step_name`, `step_index` (its position in the archive), the step's scalar fields under their own names
    (`status`, `creationTimeStamp`, `finishTimeStamp`, ...), `log`, `log_size_bytes` and `truncated`.
    `steps` and each step's `logs` may be a list or an object. `fields_cut(step name)` is called for a step whose
    other fields passed FIELDS_BYTES (those after it are left out). Raises LogFormatError."""
    doc = _JsonStream(chunks)
    if doc.peek() != "{":
        raise LogFormatError("the archive is not a JSON object")
    index = 0
    for key in doc.object_keys():
        if key != "steps":
            doc.skip()
            continue
        kind = doc.peek()
        if kind == "[":
            named: Iterator[Optional[str]] = (None for _ in doc.array_items())
        elif kind == "{":
            named = iter(doc.object_keys())
        else:
            doc.skip()
            continue
        for name in named:
            step = _read_step(doc, name, max_bytes, strip_ansi, fields_cut)
            if step is not None:
                step["step_index"] = index
                index += 1
                yield step


def _read_step(
    doc: _JsonStream,
    key: Optional[str],
    max_bytes: int,
    strip_ansi: bool,
    fields_cut: Callable[[Optional[str]], None],
) -> Optional[Dict[str, Any]]:
    if doc.peek() != "{":
        doc.skip()
        return None
    fields: Dict[str, Any] = {}
    room = FIELDS_BYTES
    cut = False
    text = StepText(max_bytes, strip_ansi)
    for field in doc.object_keys():
        kind = doc.peek()
        if field == "logs":
            _read_logs(doc, text)
        elif kind in "{[":
            doc.skip(1)  # nested data (metrics and the like): not part of the record
        else:
            value = doc.small_string(FIELD_CHARS) if kind == '"' else doc.scalar()
            size = len(field) + (len(value) if isinstance(value, str) else 8)
            if size > room:
                cut = True
                continue
            room -= size
            fields[field] = value
    log, size, truncated = text.finish()
    name = fields.pop("name", None)
    step_name = name if isinstance(name, str) and name else key
    if cut:
        fields_cut(step_name)
    return {
        **fields,
        "step_name": step_name,
        "status": fields.get("status"),
        "creationTimeStamp": fields.get("creationTimeStamp"),
        "finishTimeStamp": fields.get("finishTimeStamp"),
        "log": log,
        "log_size_bytes": size,
        "truncated": truncated,
    }


def _read_logs(doc: _JsonStream, text: StepText) -> None:
    """A step's `logs`: a list or an object of chunks, or one chunk; a chunk that is not text is skipped."""
    kind = doc.peek()
    for _ in doc.array_items() if kind == "[" else doc.object_keys() if kind == "{" else [None]:
        if doc.peek() == '"':
            for piece in doc.string_pieces():
                text.add(piece)
        else:
            doc.skip()  # null or anything that is not text


# ---------------------------------------------------------------------------------------------------------------
# the retriever
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class BuildLogsRetriever(PerBuildRetriever):
    """build_logs: per finished build, its progress job, then its archived log from the signed URL, streamed."""

    storage_requester: Optional[Requester] = None
    max_kb_per_step: Union[int, str] = 1024
    strip_ansi: Union[bool, str] = False

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        if self.storage_requester is None:
            raise ValueError("BuildLogsRetriever needs a storage_requester")
        kb = InterpolatedString.create(str(self.max_kb_per_step), parameters=parameters).eval(self.config)
        self._max_bytes = max(1, int(kb)) * 1024
        self._strip_ansi = bool(
            InterpolatedBoolean(condition=str(self.strip_ansi), parameters=parameters).eval(self.config)
        )
        # The body is read as it arrives, never loaded whole (the CDK sets this from a streaming decoder, which a
        # requester declared inside a custom component does not get).
        self.storage_requester.stream_response = True  # type: ignore[attr-defined]
        quiet_http_log(self.storage_requester, self.config)
        self._said: Set[str] = set()
        self._said_lock = threading.Lock()

    def _build_slice(self, build: Mapping[str, Any], window: StreamSlice) -> StreamSlice:
        base = super()._build_slice(build, window)
        return StreamSlice(
            partition=base.partition,
            cursor_slice=base.cursor_slice,
            extra_fields={
                **base.extra_fields,
                "progress": build.get("progress"),
                "status": build.get("status"),
                "finished": build.get("finished"),
            },
        )

    def _say_once(self, topic: str, message: str) -> None:
        with self._said_lock:
            if topic in self._said:
                return
            self._said.add(topic)
        logger.info(message)

    def _read_build(self, records_schema: Mapping[str, Any], build_slice: StreamSlice) -> Iterator[Mapping[str, Any]]:
        build = build_slice.extra_fields
        build_id = build_slice.partition.get("parent_id")
        if not build_finished(build):
            return  # no archive yet: the cursor follows the build, and a later sync reads its log once it has finished
        if not build.get("progress"):
            self._say_once(
                "no-progress",
                f"Build {build_id} has no progress id, so it has no log to read; builds like "
                "it are skipped in stream 'build_logs' (said once).",
            )
            return
        response = self.requester.send_request(stream_slice=build_slice)
        if not response:  # ignored by the error policy (a deleted build, a missing scope), already logged
            return
        progress = response_json(response)
        if not isinstance(progress, Mapping):
            message = (
                f"Codefresh answered GET {url_without_query(response.url)} with a {type(progress).__name__}, not the "
                f"progress object that names build {build_id}'s log, so stream 'build_logs' cannot read the logs; the "
                "API may have changed: please report this."
            )
            raise AirbyteTracedException(
                message=message, internal_message=message, failure_type=FailureType.system_error
            )
        location = progress.get("location") or {}
        url = location.get("url") if isinstance(location, Mapping) else None
        if not url or location.get("type") == "firebase":
            self._say_once(
                "not-archived",
                f"The log of build {build_id} is not archived yet (its progress job has no "
                "archive URL); a later sync reads it while the build is within builds_lookback_hours "
                "(said once per sync).",
            )
            return
        storage_slice = StreamSlice(
            partition=build_slice.partition,
            cursor_slice=build_slice.cursor_slice,
            extra_fields={**build, "log_url": str(url)},
        )
        yield from self._read_archive(build_id, storage_slice)

    def _read_archive(self, build_id: Any, storage_slice: StreamSlice) -> Iterator[Mapping[str, Any]]:
        """The archive's steps as records, each as soon as it is read. A body cut off on the way, or one that does
        not parse (a proxy can cut a body and fix its length), is fetched again and read on from the first step not
        emitted yet; the last attempt fails the sync if the connection broke, and skips the rest of the log with one
        line if the body is still not a build log. A log past the storage's size cap or deadline (the manifest's
        log_storage_requester) is not read further, with one line."""
        where = url_without_query(storage_slice.extra_fields["log_url"])
        emitted = 0

        def fields_cut(step: Optional[str]) -> None:
            self._say_once(
                "fields-cut",
                f"Step '{step}' of build {build_id} has more than {FIELDS_BYTES // 1024} kB of fields besides its log; "
                "the fields past that are left out of its record, as for steps like it (said once per sync).",
            )

        for attempt in range(1, BODY_READ_ATTEMPTS + 1):
            # Retries spent end in the same sentence as every other stream's.
            response = send_explaining_spent_retries(self.storage_requester, self.name, stream_slice=storage_slice)  # type: ignore[arg-type]
            if response is None:
                return
            if not response.ok:  # an expired URL or a missing archive: the error policy said so in one line
                response.close()
                return
            chunks = response.iter_content(READ_CHUNK_BYTES)
            try:
                for step in read_log_steps(chunks, self._max_bytes, self._strip_ansi, fields_cut):
                    if step["step_index"] >= emitted:  # a log read again goes on where the last read stopped
                        emitted += 1
                        yield step
                return
            except AnswerLimitExceeded as exceeded:
                logger.warning(
                    f"Skipping the rest of the log of build {build_id} in stream 'build_logs': {exceeded.what}; the "
                    f"steps read before that ({emitted}) are synced."
                )
                return
            except requests.RequestException as exc:
                broken, problem = True, f"the connection broke while reading it ({type(exc).__name__})"
            except LogFormatError as exc:
                broken, problem = False, f"it is not a readable build log ({exc})"
            finally:
                response.close()
            if attempt < BODY_READ_ATTEMPTS:
                logger.info(f"Reading the log of build {build_id} again: {problem}.")
            elif broken:
                message = (
                    f"The log of build {build_id} could not be read from {where} in {attempt} attempts: {problem}. "
                    "The next sync tries again."
                )
                raise AirbyteTracedException(
                    message=message, internal_message=message, failure_type=FailureType.transient_error
                )
            else:
                logger.warning(
                    f"Skipping the log of build {build_id} in stream 'build_logs': the archive at {where} was read "
                    f"{attempt} times and {problem}" + (f"; its first {emitted} steps were read." if emitted else ".")
                )
