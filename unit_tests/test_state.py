"""CursorStartsAfterState: a sync starts just after the newest record already emitted (source_codefresh/state.py)."""

from __future__ import annotations

import pytest

from source_codefresh.state import CursorStartsAfterState


def test_iso_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    state = {"created": "2026-10-05T12:34:56.789Z"}
    assert migration.should_migrate(state)
    assert migration.migrate(state) == {"created": "2026-10-05T12:34:56.790Z"}


def test_epoch_millisecond_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="createdAt", datetime_format="%ms", config={}, parameters={})
    assert migration.migrate({"createdAt": 1759667696789}) == {"createdAt": 1759667696790}


@pytest.mark.parametrize("state", [{}, {"other": "x"}, {"state_type": "date-range", "created": "x"}])
def test_states_without_a_plain_cursor_are_left_alone(state):
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    assert not migration.should_migrate(state)
