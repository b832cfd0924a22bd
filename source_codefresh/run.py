"""Console entry point: `source-codefresh spec | check | discover | read`."""

from __future__ import annotations

import os
import sys
import traceback
from datetime import datetime, timezone
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)

from source_codefresh.source import SourceCodefresh


def _get_source(args: List[str]) -> Optional[SourceCodefresh]:
    """The source is built with config, catalog and state, because its streams are built from them."""
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        return SourceCodefresh(
            catalog=SourceCodefresh.read_catalog(catalog_path) if catalog_path else None,
            config=SourceCodefresh.read_config(config_path) if config_path else None,
            state=SourceCodefresh.read_state(state_path) if state_path else None,
            # The CDK writes a migrated config back to this file, besides the CONTROL message Airbyte saves; a
            # read-only file (a mounted secret) is left as it is rather than ending the run.
            config_path=config_path if config_path and os.access(config_path, os.W_OK) else None,
        )
    except Exception as error:  # the platform needs a TRACE message, not a Python traceback on stderr
        message = AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=TraceType.ERROR,
                emitted_at=datetime.now(timezone.utc).timestamp() * 1000,
                error=AirbyteErrorTraceMessage(
                    message=f"source-codefresh could not start: {error}",
                    internal_message=str(error),
                    stack_trace=traceback.format_exc(),
                    failure_type=FailureType.config_error,
                ),
            ),
        )
        print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode(), flush=True)
        return None


def run() -> None:
    args = sys.argv[1:]
    source = _get_source(args)
    if source is None:
        sys.exit(1)
    launch(source, args)


if __name__ == "__main__":
    run()
