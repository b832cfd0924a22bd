"""Incremental state: the exclusive start of a sync, and the millisecond timestamps Codefresh uses."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, MutableMapping, Optional, Union

from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.types import Config


@dataclass
class CursorStartsAfterState(StateMigration):
    """Starts a sync one unit after the state's cursor value, so the record that set it is not emitted again.

    The state holds the cursor value of the newest record emitted so far; the CDK starts the next sync *at* that value
    and the API's time filters are inclusive, so that record would come back in every sync. Moving the start by the
    cursor's unit (1 ms for Codefresh timestamps) excludes exactly that record and nothing newer: Codefresh timestamps
    have millisecond precision. A sync that finds nothing new keeps the moved value, which only ever moves the start
    by 1 ms per empty sync, far less than the time between two syncs.
    """

    cursor_field: str
    datetime_format: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    unit_milliseconds: Union[int, str] = 1

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # The manifest passes `{{ parameters.cursor_field }}`: custom components get their fields uninterpolated.
        self.cursor_field = InterpolatedString.create(str(self.cursor_field), parameters=parameters).eval(self.config)
        self.datetime_format = InterpolatedString.create(str(self.datetime_format), parameters=parameters).eval(self.config)

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return bool(stream_state) and self.cursor_field in stream_state and "state_type" not in stream_state

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        value = stream_state[self.cursor_field]
        moved: MutableMapping[str, Any] = dict(stream_state)
        moved[self.cursor_field] = _shift_cursor_value(value, self.datetime_format, int(self.unit_milliseconds))
        return moved


def _shift_cursor_value(value: Any, datetime_format: str, milliseconds: int) -> Any:
    if datetime_format == "%ms":
        return int(value) + milliseconds
    parsed = parse_iso(str(value))
    if parsed is None:
        return value
    return format_iso_ms(parsed + timedelta(milliseconds=milliseconds))


def parse_iso(value: str) -> Optional[datetime]:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_iso_ms(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
