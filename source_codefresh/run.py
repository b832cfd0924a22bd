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
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

from source_codefresh.source import SourceCodefresh, config_problem, mask_secret_forms


def _get_source(args: List[str]) -> Optional[SourceCodefresh]:
    """The source is built with config, catalog and state, because its streams are built from them. A config with a
    problem (`config_problem`) builds no stream: the command itself then answers with the problem's sentence (check: a
    FAILED status); one the spec refuses is answered by the CDK's entrypoint, before any stream is built."""
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        config = SourceCodefresh.read_config(config_path) if config_path else None
        if config is not None:
            mask_secret_forms(config)
        return SourceCodefresh(
            catalog=SourceCodefresh.read_catalog(catalog_path) if catalog_path else None,
            config=config if config is None or config_problem(config) is None else {},
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
                    message=filter_secrets(f"source-codefresh could not start: {error}"),
                    internal_message=filter_secrets(str(error)),
                    stack_trace=filter_secrets(traceback.format_exc()),
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
