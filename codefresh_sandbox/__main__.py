"""Run the Codefresh sandbox from the command line.

    python -m codefresh_sandbox [--host 127.0.0.1] [--port 8765] [--builds 500] [--seed 42]
                                        [--build-days 90] [--unfinished-fraction 0.02]
                                        [--latency-ms 0] [--audit-time-format ms|iso] [--audit-cap 50000]
                                        [--audit-first-page 1|0]
                                        [--analytics-empty-range error_500|empty_200]
                                        [--images-paging offset|cursor|ignores_paging] [--fault JSON ...] [--verbose]
                                        [--workflow-dates exact|date_only|date_first_instant]
                                        [--annotations-none empty_200|not_found_404]
                                        [--storage-port 0] [--build-log-shape mixed] [--build-log-huge-every N]
                                        [--build-log-huge-mb 50] [--build-log-missing-every N]
                                        [--build-log-expired-every N]
                                        [--gitops-schema current|before_promotions] [--gitops-page-cap 50|none]
                                        [--gitops-invalid-query-status 400|200]
                                        [--gitops-list-pagination evidenced_only|every_list]
                                        [--gitops-releases-filter optional|required]
                                        [--gitops-introspection disabled|enabled]
                                        [--gitops-account enabled|empty] [--gitops-access granted|forbidden]

Prints exactly one line, `SANDBOX_BASE_URL=http://127.0.0.1:<port>/api`, then serves until SIGINT or SIGTERM (the
build log storage listens on its own port, named by the signed URLs of `GET /api/progress/{id}`; the GitOps GraphQL
endpoint is `POST /2.0/api/graphql` on the API's port).
`--port 0` picks a free port. `--fault` takes one rule (a JSON object) or a list of rules; it may repeat.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, List, Optional

from .data import READINGS, STATES, SandboxConfig, recent_anchor
from .progress import LOG_SHAPES
from .server import SandboxServer

# The readings of the API the evidence leaves open (README "Readings"): one flag each, its help text here.
READING_HELP = {
    "images_paging": "how GET /images pages",
    "workflow_dates": "how /workflow reads startDate/endDate",
    "audit_time_format": "how /audit reads from/to (the other form is ignored)",
    "audit_first_page": "the number of the first /audit page (without `page`: the first)",
    "analytics_empty_range": "the answer to an analytics range without data",
    "analytics_build_rows": "whether build-duration reports answer a row per granularity bucket or one aggregate",
    "annotations_none": "the answer of GET /annotations when nothing matches",
    "environments_id": "whether GET /environments-v2 items carry an _id",
    "gitops_schema": "a GraphQL server with `promotions`, or an older one with only `productReleases`",
    "gitops_page_cap": "whether a GraphQL page larger than 50 (`first`, `last`) is an error",
    "gitops_invalid_query_status": "the HTTP status of a GraphQL query refused before execution (unknown field ...)",
    "gitops_list_pagination": "whether the GraphQL lists the Go SDK reads whole take a `pagination` argument",
    "gitops_releases_filter": "whether gitopsReleases answers without an application filter",
    "gitops_introspection": "whether GraphQL introspection is answered",
    "gitops_account": "`empty`: an account without GitOps (no runtime, every GraphQL list empty)",
    "gitops_access": "`forbidden`: a key without GitOps access (every GraphQL field answers Forbidden)",
    "gitops_date_filters": "whether the GraphQL lists apply their date filters or answer the whole list",
}


def _rules(values: List[str]) -> List[Any]:
    rules: List[Any] = []
    for text in values:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise SystemExit(f"--fault: not JSON ({exc}): {text}") from None
        rules.extend(value if isinstance(value, list) else [value])
    return rules


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codefresh_sandbox", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--builds", type=int, default=SandboxConfig.builds)
    ap.add_argument("--build-days", type=int, default=SandboxConfig.build_days, help="days the builds span")
    ap.add_argument(
        "--unfinished-fraction",
        type=float,
        default=SandboxConfig.unfinished_fraction,
        help="share of the builds (the newest) not finished yet",
    )
    ap.add_argument("--seed", type=int, default=SandboxConfig.seed)
    ap.add_argument(
        "--anchor", default=recent_anchor(), help="the data's 'now' (ISO-8601; default: the first day of last month)"
    )
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument(
        "--run-polls",
        type=int,
        default=SandboxConfig.run_polls_to_finish,
        help="GET /builds/{id} polls until a pipeline run is finished",
    )
    ap.add_argument(
        "--audit-cap",
        type=int,
        default=SandboxConfig.audit_cap,
        help="most entries one /audit query lists (docs: 50,000)",
    )
    ap.add_argument("--fault", action="append", default=[], metavar="JSON", help="a fault rule (repeatable)")
    ap.add_argument("--verbose", action="store_true", help="log one line per request (never headers)")
    for name, allowed in {**READINGS, **STATES}.items():  # one flag per reading (and GitOps state), from data.py
        flag = "--" + name.replace("_", "-")
        text = READING_HELP.get(name, "a reading of the API") + " (see the README's Readings)"
        ap.add_argument(flag, choices=allowed, default=getattr(SandboxConfig, name), help=text)
    ap.add_argument("--storage-port", type=int, default=0, help="the build log storage's port (0 picks a free one)")
    ap.add_argument(
        "--build-log-shape",
        choices=LOG_SHAPES,
        default=SandboxConfig.build_log_shape,
        help="build log archives: `steps` and `logs` as arrays, objects, or both across builds",
    )
    ap.add_argument("--build-log-huge-every", type=int, default=0, help="every N-th build has a huge step log")
    ap.add_argument("--build-log-huge-mb", type=float, default=SandboxConfig.build_log_huge_mb)
    ap.add_argument("--build-log-missing-every", type=int, default=0, help="every N-th build's archive is gone (404)")
    ap.add_argument(
        "--build-log-expired-every",
        type=int,
        default=0,
        help="every N-th build's progress job hands out an expired signed URL (403)",
    )
    args = ap.parse_args(argv)

    config = SandboxConfig(
        host=args.host,
        port=args.port,
        builds=args.builds,
        seed=args.seed,
        anchor=args.anchor,
        build_days=args.build_days,
        unfinished_fraction=args.unfinished_fraction,
        latency_ms=args.latency_ms,
        run_polls_to_finish=args.run_polls,
        audit_cap=args.audit_cap,
        faults=_rules(args.fault),
        verbose=args.verbose,
        storage_port=args.storage_port,
        build_log_shape=args.build_log_shape,
        build_log_huge_every=args.build_log_huge_every,
        build_log_huge_mb=args.build_log_huge_mb,
        build_log_missing_every=args.build_log_missing_every,
        build_log_expired_every=args.build_log_expired_every,
        **{name: getattr(args, name) for name in {**READINGS, **STATES}},
    )
    try:
        server = SandboxServer(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    print(f"SANDBOX_BASE_URL={server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
