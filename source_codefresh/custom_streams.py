"""The checks of the `custom_streams` setting that neither JSON schema nor the manifest can make.

Each entry becomes a stream through the manifest's `dynamic_streams` block. Before that, every entry must be safe
and well-formed: the connector only reads, so a path whose GET changes something in Codefresh (restarts a build,
approves it, starts an environment, switches the account, ...) is refused by a deny-list, and so is anything that is
not a plain path under the API root (a scheme or host, `..`, a query string, percent-encoding, placeholders). The
answer is one sentence that names the entry and says what to change, given before any request is sent.

The deny-list comes from Codefresh's own OpenAPI document: every GET with a side effect or that hands out credentials
(28 of its 96 GET paths; the other 68 are plain reads and pass), and the action words of paths that exist only as
writes (see docs/api-notes.md section 9, "Traps"); the user's view is docs/codefresh.md, "Custom streams".
"""

from __future__ import annotations

import functools
import re
from dataclasses import InitVar, dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_codefresh.spec import manifest_path

ENTRY_FIELDS = ("name", "path", "records_key", "primary_key", "pagination", "params", "cursor_field")
PAGINATIONS = ("none", "offset", "page", "cursor")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# A key of a record or of an answer, dotted for nested keys. The keys reach the CDK as data (never as templates),
# but dpath reads `*`, `?` and `[` as wildcards, so only plain key characters are accepted.
_KEY_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_SEGMENT = re.compile(r"[A-Za-z0-9._~:-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]{1,100}")

# Paths refused by their first segments (`*` stands for any one segment): why, and what to do instead.
_ONLY_READS = "the connector only reads, so point path at an endpoint that only reads"
_DENIED_PREFIXES: Sequence[Tuple[Tuple[str, ...], str, str]] = (
    (("admin",), "it is Codefresh's administration API", _ONLY_READS),
    (("progress",), "it controls a running build (DELETE progress/{id} terminates it)", _ONLY_READS),
    (("builds", "rebuild"), "a GET of builds/rebuild/{id} starts the build again", _ONLY_READS),
    (("workflow", "*", "pending-approval"), "a GET there approves or denies a waiting build", _ONLY_READS),
    (
        ("kubernetes",),
        "it installs, deletes and rolls back Helm releases (a GET of kubernetes/rollback rolls back)",
        _ONLY_READS,
    ),
    (
        ("contexts",),
        "contexts hold credentials under any name",
        "use the built-in contexts stream, which leaves their credentials out",
    ),
    (("auth",), "it manages API keys", "use the built-in api_keys stream, which lists the keys without their values"),
    (
        ("user", "*"),
        "the paths under user switch the key's account, notify Codefresh or issue tokens",
        "use the built-in current_user stream, which reads GET user",
    ),
    (("team", "group"), "a GET of team/group/synchronize changes the account's teams", _ONLY_READS),
    (("registry", "auth"), "it issues registry tokens", _ONLY_READS),
    (("runner-installation",), "a GET there opens a new session of a runner installation", _ONLY_READS),
)
# Paths refused because one of their segments is one of these words (compared without case).
_DENIED_WORDS: Mapping[str, str] = {
    **dict.fromkeys(("rebuild", "restart"), "a GET there restarts a build"),
    **dict.fromkeys(("approve", "deny", "pending-approval"), "a GET there approves or denies a waiting build"),
    **dict.fromkeys(
        ("start", "stop", "pause", "unpause", "terminate"), "a GET there starts or stops an environment or a build"
    ),
    "rename": "a GET there renames an environment",
    "rollback": "a GET there rolls back a Helm release",
    "prepare": "a GET there refreshes a context's credentials",
    **dict.fromkeys(("changeaccount", "switchaccount"), "it switches the account of the API key"),
    "synchronize": "a GET there changes the account's teams",
    **dict.fromkeys(("run", "debug", "testit"), "it starts a build"),
    **dict.fromkeys(
        (
            "delete",
            "update",
            "updateuser",
            "adduser",
            "install",
            "promote",
            "test",
            "register",
            "duplicate",
            "assignusertoteam",
            "deleteuserfromteam",
            "admin",
        ),
        "it is an endpoint that changes data",
    ),
    **dict.fromkeys(("token", "firebaseauth", "login", "loginasuser", "logout"), "it issues or revokes credentials"),
    "decrypt": "it returns decrypted secrets",
}
# Query parameters the connector sets itself, or that make Codefresh return secrets in clear.
_PAGING_PARAMS = frozenset({"page", "limit", "offset", "pagesize", "paginationreset", "paginationdirection"})
_SECRET_PARAMS = frozenset({"decrypt", "decryptvariables"})


def custom_streams_problem(config: Mapping[str, Any], api_root: str, built_in: FrozenSet[str]) -> Optional[str]:
    """The first thing wrong with the `custom_streams` setting, as one sentence; None when every entry is usable.
    `built_in`: the names of the manifest's own streams, lower-cased."""
    entries = config.get("custom_streams")
    if entries in (None, ""):
        return None
    if not isinstance(entries, list):
        return (
            "custom_streams must be a list of entries ({name, path, records_key, primary_key, pagination}), or left "
            "empty."
        )
    seen: Dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        problem = entry_problem(entry, number, api_root, built_in, seen)
        if problem:
            return problem
    return None


def entry_problem(
    entry: Any, number: int, api_root: str, built_in: FrozenSet[str], seen: Dict[str, int]
) -> Optional[str]:
    if not isinstance(entry, Mapping):
        return f"custom_streams entry {number} is not an object: give it name, path, primary_key and pagination."
    name = entry.get("name")
    where = (
        f"custom_streams entry {number} ('{name}')"
        if isinstance(name, str) and name
        else f"custom_streams entry {number}"
    )

    unknown = sorted(str(key) for key in entry if key not in ENTRY_FIELDS)
    if unknown:
        return f"{where} has an unknown field '{unknown[0]}': the fields are {', '.join(ENTRY_FIELDS)}."
    if not isinstance(name, str) or not name:
        return f"{where} has no name: give the stream a name of letters, digits and underscores, e.g. registries."
    if not _NAME.fullmatch(name):
        return (
            f"{where}: the name must start with a letter and hold only letters, digits and underscores (at most 64), "
            f"for example {_suggest_name(name)}."
        )
    if name.lower() in built_in:
        return (
            f"{where}: '{name}' is the name of a built-in stream; give the custom stream another name, e.g. "
            f"custom_{name}."
        )
    if name.lower() in seen:
        return (
            f"{where}: the name '{name}' is already used by entry {seen[name.lower()]}; give each custom stream its "
            "own name."
        )
    seen[name.lower()] = number

    problem = path_problem(entry.get("path"), api_root)
    if problem:
        return f"{where}: {problem}"

    pagination = entry.get("pagination")
    if pagination not in PAGINATIONS:
        shown = f"'{pagination}' is not a pagination" if pagination not in (None, "") else "pagination is missing"
        return (
            f"{where}: {shown}; set it to none (one request), offset (limit/offset), page (page/limit) or cursor "
            "(Codefresh's ordered pages, like builds)."
        )

    for field, required in (("records_key", False), ("primary_key", True), ("cursor_field", False)):
        value = entry.get(field)
        if value in (None, "") and not required:
            continue
        if not isinstance(value, str) or not _KEY_PATH.fullmatch(value):
            if value in (None, ""):
                return f"{where} has no primary_key: name the field that identifies a record, e.g. _id or metadata.id."
            return (
                f"{where}: {field} '{value}' is not a field name: use letters, digits, '_' and '-', with dots between "
                "nested keys (e.g. metadata.id)."
            )
    return params_problem(entry.get("params"), where)


def path_problem(path: Any, api_root: str) -> Optional[str]:
    """Why `path` may not be read, as the end of a sentence; None for a plain reading path under the API root."""
    if not isinstance(path, str) or not path.strip():
        return "path is missing: set it to the endpoint under the API root, e.g. registries."
    shown = f"path '{path}'"
    if _SCHEME.match(path) or path.startswith("//") or "\\" in path or "@" in path:
        return f"{shown} is a URL or names a host: write only the path under the API root (base_url), e.g. registries."
    if "?" in path:
        return f"{shown} has a query string: move its parameters to params (for example name status, value error)."
    if "#" in path:
        return f"{shown} has a '#' fragment: remove it."
    if "%" in path:
        return (
            f"{shown} is percent-encoded: write it plainly (to read one pipeline, use its id rather than its encoded "
            "project/name)."
        )
    if "{" in path or "}" in path:
        return f"{shown} has a placeholder: a custom stream reads one fixed path, so write the value itself."
    segments = path[1:].split("/") if path.startswith("/") else path.split("/")
    if segments and segments[-1] == "" and len(segments) > 1:
        segments = segments[:-1]  # one trailing slash is part of some paths (views/)
    for segment in segments:
        if segment in ("", ".", ".."):
            return f"{shown} has an empty, '.' or '..' segment: write the path under the API root without them."
        if not _SEGMENT.fullmatch(segment):
            bad = next(char for char in segment if not _SEGMENT.fullmatch(char))
            return f"{shown} contains {bad!r}: a path may hold only letters, digits and - _ . ~ : between its slashes."
    lowered = [segment.lower() for segment in segments]
    for prefix, why, instead in _DENIED_PREFIXES:
        if len(lowered) >= len(prefix) and all(
            want in ("*", got) for want, got in zip(prefix, lowered[: len(prefix)], strict=True)
        ):
            return f"{shown} is refused because {why}: {instead}."
    for segment in lowered:
        if segment in _DENIED_WORDS:
            return f"{shown} is refused because {_DENIED_WORDS[segment]} ('{segment}'): {_ONLY_READS}."
    # Defence in depth: the URL the requester builds must stay on the API's host, under its root.
    root = urlsplit(api_root)
    url = urlsplit(f"{api_root}/{'/'.join(segments)}")
    if (url.scheme, url.netloc) != (root.scheme, root.netloc) or not url.path.startswith(root.path.rstrip("/") + "/"):
        return f"{shown} would leave the API root {api_root}: write only the path under it."
    return None


def params_problem(params: Any, where: str) -> Optional[str]:
    """`params` is a list of {name, value} (a name given twice is sent twice); the object form of 0.1.x (name to
    value, or to a list of values), which the spec's config migration turns into that list when the connector
    starts, is checked as the list it becomes."""
    if params in (None, [], {}):
        return None
    if isinstance(params, Mapping):
        items: List[Dict[str, Any]] = []
        for name, value in params.items():
            for one in value if isinstance(value, list) else [value]:
                if not isinstance(one, (str, int, float, bool)):
                    return f"{where}: the value of query parameter '{name}' must be text (numbers and true/false too)."
                items.append({"name": name, "value": str(one)})
        params = items
    if not isinstance(params, list) or not all(isinstance(item, Mapping) for item in params):
        return (
            f"{where}: params must be a list of query parameters, each with a name and a value, e.g. "
            "[{name: status, value: error}]."
        )
    for item in params:
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            return f"{where}: the query parameter name '{name}' is not valid: use letters, digits and - _ . [ ]."
        # `decrypt[]=true` and `decryptVariables[0]=true` are `decrypt` and `decryptVariables` to Codefresh's query
        # parser (qs: arrays, and nested keys with `allowDots`), and `limit[]` is `limit`.
        base = re.split(r"[\[.]", name, maxsplit=1)[0].lower()
        if base in _PAGING_PARAMS:
            return (
                f"{where}: params may not set '{name}': the connector pages by itself (pagination); remove it from "
                "params."
            )
        if base in _SECRET_PARAMS:
            return f"{where}: params may not set '{name}', which makes Codefresh return secrets in clear; remove it."
        if not isinstance(value, str):
            return f"{where}: the value of query parameter '{name}' must be text (numbers and true/false too)."
    return None


@dataclass
class HasPrimaryKey(RecordTransformation):
    """A custom stream's record must hold its primary key (the entry's `primary_key`, copied to the top level when
    nested): the first record without it fails the stream with one sentence. Emitted without it, every such record
    would look alike to a destination that deduplicates, which keeps one of them; a key that no record has is almost
    always a typo (`id` for `_id`), and only the user knows which field identifies a record."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._stream = str(parameters.get("name") or "")
        self._path = str(parameters.get("primary_key_path") or "")
        self._field = self._path.replace(".", "_")

    def transform(
        self,
        record: Dict[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        if record.get(self._field) is not None:
            return
        fields = ", ".join(sorted(str(key) for key in record)[:12]) or "none"
        message = (
            f"Custom stream '{self._stream}' read a record without '{self._path}', its primary_key (the record's "
            f"fields: {fields}), so a destination that deduplicates would keep only one such record: set its "
            "primary_key in custom_streams to a field every record has."
        )
        raise AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


@functools.lru_cache(maxsize=1)
def builtin_stream_names() -> FrozenSet[str]:
    """The names of the manifest's own streams (every entry of its `streams:` list, conditional ones included),
    lower-cased."""
    manifest = safe_load_yaml(manifest_path().read_text())  # the loader the CDK reads the manifest with
    definitions = manifest.get("definitions", {}).get("streams", {})
    names: List[str] = []
    entries: List[Any] = []
    for entry in manifest.get("streams", []):
        entries.extend(entry.get("streams", []) if entry.get("type") == "ConditionalStreams" else [entry])
    for entry in entries:
        key = str(entry.get("$ref", "")).rsplit("/", 1)[-1]
        stream = definitions.get(key, entry)
        names.append(str((stream.get("$parameters") or {}).get("name") or stream.get("name") or key))
    return frozenset(name.lower() for name in names)


def _suggest_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "my_stream"
    return cleaned if cleaned[0].isalpha() else f"stream_{cleaned}"
