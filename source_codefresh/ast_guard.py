"""A guard against CPython bug gh-106905 on the interpreters that have it (3.11.0-3.11.7, 3.12.0-3.12.1).

On those interpreters the recursion counter of the AST constructor (the C code that turns a parsed expression into
`ast` objects) is shared by every thread. When a garbage collection starts in the middle of it, the finalizers it
runs are Python code, so the interpreter may switch threads there; another thread that builds an AST meanwhile
resets the shared counter to its own depth, and the first one fails with
`SystemError: AST constructor recursion depth mismatch (before=72, after=63)`.

The CDK parses on every request: its Jinja interpolation (airbyte_cdk/sources/declarative/interpolation/jinja.py,
`JinjaInterpolation._literal_eval`) calls `ast.literal_eval` on each interpolated header, parameter and path, and
build_details and build_steps send their requests from `num_workers` threads (source_codefresh/per_build.py). So
any sync could fail at random, the bigger the likelier.

The guard replaces `ast.parse`, through which `ast.literal_eval` parses a string (it looks `parse` up in the `ast`
module at each call, so callers that imported `literal_eval` by name are covered too, as are direct `ast.parse`
callers such as `traceback`'s error carets). While any thread is inside `ast.parse`, automatic garbage collection
is paused, so no finalizer runs and no thread switch happens inside the AST constructor; the collections that were
due run right after. No lock is held while other code runs, so the guard cannot deadlock. Not covered: code that
imported `parse` itself by name or calls `compile(..., ast.PyCF_ONLY_AST)`; of the connector's dependencies only
jinja2's NativeEnvironment does, and a read never imports it (the CDK uses the sandboxed environment).

`install()` runs when `source_codefresh` is imported, so every way of running the connector gets it: the console
script (README venv, Docker image, PyAirbyte, Airbyte's base image) and the CDK's test entry points. It does
nothing on interpreters without the bug (3.11.8+, 3.12.2+, 3.13+).
"""

from __future__ import annotations

import ast
import functools
import gc
import sys
import threading
from typing import Any, Callable, Optional, Tuple

# The releases with the bug: from gh-95185 (the shared counter, 3.11.0) to gh-106905's fix (3.11.8, 3.12.2, 3.13.0).
AFFECTED_RANGES: Tuple[Tuple[Tuple[int, int, int], Tuple[int, int, int]], ...] = (
    ((3, 11, 0), (3, 11, 8)),
    ((3, 12, 0), (3, 12, 2)),
)


def is_affected(version: Tuple[int, ...] = tuple(sys.version_info[:3])) -> bool:
    """Whether a CPython release `(major, minor, micro)` has gh-106905."""
    if sys.implementation.name != "cpython":
        return False
    release = tuple(version[:3])
    return any(first <= release < fixed for first, fixed in AFFECTED_RANGES)


# Guards the counters below; held for a few C calls only, never around a parse. Reentrant in case a finalizer of
# the same thread parses while it is held.
_state_lock = threading.RLock()
_parsing = 0  # threads inside ast.parse right now
_reenable_gc = False  # whether the first of them found automatic collection on
_original_parse: Optional[Callable[..., Any]] = None


def _pause_gc() -> None:
    global _parsing, _reenable_gc
    with _state_lock:
        if _parsing == 0:
            _reenable_gc = gc.isenabled()
            gc.disable()
        _parsing += 1


def _resume_gc() -> None:
    global _parsing
    with _state_lock:
        _parsing -= 1
        if _parsing == 0 and _reenable_gc:
            gc.enable()


def _guarded(parse: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(parse)
    def guarded_parse(*args: Any, **kwargs: Any) -> Any:
        _pause_gc()
        try:
            return parse(*args, **kwargs)
        finally:
            _resume_gc()

    guarded_parse.__source_codefresh_guard__ = True  # type: ignore[attr-defined]
    return guarded_parse


def installed() -> bool:
    return _original_parse is not None


def install(force: bool = False) -> bool:
    """Guard `ast.parse` if this interpreter has gh-106905 (or `force`); True when the guard is in place."""
    global _original_parse
    with _state_lock:
        if _original_parse is None and (force or is_affected()):
            _original_parse = ast.parse
            ast.parse = _guarded(_original_parse)
        return _original_parse is not None


def uninstall() -> None:
    """Put the original `ast.parse` back (tests use it to show the race without the guard)."""
    global _original_parse
    with _state_lock:
        if _original_parse is not None:
            ast.parse = _original_parse
            _original_parse = None


def describe() -> str:
    """One line for logs and tests: this interpreter and whether the guard is in place."""
    version = ".".join(str(part) for part in sys.version_info[:3])
    if installed():
        return f"Python {version} has CPython bug gh-106905: automatic garbage collection pauses during ast.parse"
    if is_affected():
        return f"Python {version} has CPython bug gh-106905, and the guard is NOT installed"
    return f"Python {version} does not have CPython bug gh-106905: no guard needed, none installed"
