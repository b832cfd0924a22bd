"""The guard against CPython bug gh-106905 (source_codefresh/ast_guard.py)."""

from __future__ import annotations

import ast
import gc
import sys
import threading

import pytest
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString

import source_codefresh
from source_codefresh import ast_guard


@pytest.mark.parametrize(
    "version,affected",
    [
        ((3, 10, 13), False),
        ((3, 11, 0), True),
        ((3, 11, 2), True),  # Debian 12
        ((3, 11, 7), True),
        ((3, 11, 8), False),
        ((3, 11, 14), False),
        ((3, 12, 0), True),
        ((3, 12, 1), True),
        ((3, 12, 2), False),
        ((3, 13, 0), False),
        ((3, 14, 0), False),
    ],
)
def test_affected_releases(version, affected):
    assert ast_guard.is_affected(version) is affected


def test_importing_the_connector_installs_the_guard_exactly_where_the_interpreter_needs_it():
    assert source_codefresh.ast_guard is ast_guard
    assert ast_guard.installed() is ast_guard.is_affected()
    assert getattr(ast.parse, "__source_codefresh_guard__", False) is ast_guard.is_affected()
    assert ("does not have" in ast_guard.describe()) is not ast_guard.is_affected()


@pytest.fixture()
def spied_parse(monkeypatch):
    """The guard installed (whatever the interpreter) over a spy of ast.parse that records whether automatic
    garbage collection was on during each parse; the interpreter's own state is restored afterwards."""
    was_installed = ast_guard.installed()
    ast_guard.uninstall()
    original = ast.parse
    calls = []

    def spy(*args, **kwargs):
        calls.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", spy)
    assert ast_guard.install(force=True)
    try:
        yield calls
    finally:
        ast_guard.uninstall()
        assert ast.parse is spy
        monkeypatch.undo()
        if was_installed:
            ast_guard.install()


def test_cdk_interpolation_parses_through_the_guard_with_gc_paused(spied_parse):
    # The CDK's JinjaInterpolation._literal_eval calls ast.literal_eval, which parses through ast.parse.
    value = InterpolatedString.create("{{ config['page_size'] }}", parameters={}).eval({"page_size": "100"})

    assert value == 100
    assert spied_parse == [False]  # one parse, with automatic collection paused
    assert gc.isenabled()  # and resumed after it


def test_literal_eval_imported_by_name_is_guarded_too(spied_parse):
    from ast import literal_eval

    assert literal_eval("[1, {'a': (2, 3)}]") == [1, {"a": (2, 3)}]
    assert spied_parse == [False]
    assert gc.isenabled()


def test_a_failing_parse_resumes_gc(spied_parse):
    with pytest.raises(SyntaxError):
        ast.parse("2026-11-01T00:00:00Z", mode="eval")
    assert spied_parse == [False]
    assert gc.isenabled()


def test_gc_that_was_off_stays_off(spied_parse):
    gc.disable()
    try:
        ast.literal_eval("1")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_stays_paused_until_the_last_of_two_concurrent_parses_ends(spied_parse):
    inside, release = threading.Event(), threading.Event()
    guarded = ast.parse
    slow_calls = []

    def blocking_original(*args, **kwargs):
        slow_calls.append(gc.isenabled())
        inside.set()
        release.wait(10)
        return compile(args[0], "<test>", "eval", ast.PyCF_ONLY_AST)

    slow = threading.Thread(target=lambda: ast_guard._guarded(blocking_original)("1", mode="eval"))
    slow.start()
    try:
        assert inside.wait(10)
        guarded("2", mode="eval")  # a second thread's parse starts and ends while the first is still inside
        assert not gc.isenabled()
    finally:
        release.set()
        slow.join(10)
    assert slow_calls == [False]
    assert gc.isenabled()


def test_install_is_idempotent_and_uninstall_restores(spied_parse):
    guarded = ast.parse
    assert ast_guard.install(force=True)
    assert ast.parse is guarded  # not wrapped twice


class _CyclicGarbageWithFinalizer:
    """Garbage only a collection frees, whose finalizer is Python code: where the interpreter may switch threads."""

    def __init__(self):
        self.itself = self

    def __del__(self):
        total = 0
        for i in range(20):
            total += i


def _literal_evals_in_threads(threads: int = 8, each: int = 2000):
    errors = []

    def work():
        for _ in range(each):
            _CyclicGarbageWithFinalizer()
            try:
                ast.literal_eval("{'a': [1, 2, {'b': (3, 4)}], 'c': 'x'}")
            except SystemError as error:  # gh-106905: "AST constructor recursion depth mismatch"
                errors.append(error)

    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(5, 1, 1)
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
    return errors


def test_threads_parsing_under_gc_and_switch_stress_never_fail_with_the_guard(spied_parse):
    # Without the guard this fails on 3.11.0-3.11.7 (on 3.11.7 here: dozens of SystemErrors in about a second).
    assert _literal_evals_in_threads() == []
