"""The images stream under every reading of how GET /images pages (docs/api-notes.md 8.1; sandbox switch
`images_paging`): offset pages without a pagination object (the spec, the CLI), cursor pages like /workflow
(Codefresh's 2021 KB), and a server that ignores the paging parameters. The connector reads every image once under the
first two and fails the sync with one sentence under the third, instead of looping or stopping at the first page."""

from __future__ import annotations

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput

from codefresh_sandbox import SandboxConfig, SandboxServer
from integration_tests.syncs import read_streams

IMAGES = 450  # several pages of 100 plus a short last one


def read_images(
    server: SandboxServer, sync_mode: SyncMode = SyncMode.full_refresh, expect_failure: bool = False
) -> EntrypointOutput:
    return read_streams(server, ["images"], sync_mode, None, expect_failure, max_requests_per_minute=100000)


def sandbox(reading: str) -> SandboxServer:
    return SandboxServer(SandboxConfig(builds=10, pipelines=10, images=IMAGES, audit=10, images_paging=reading))


@pytest.mark.parametrize(
    "sync_mode", [SyncMode.full_refresh, SyncMode.incremental], ids=["full_refresh", "incremental"]
)
@pytest.mark.parametrize("reading, requests", [("offset", IMAGES // 100 + 2), ("cursor", IMAGES // 100 + 1)])
def test_every_image_once_whichever_way_the_server_pages(reading, requests, sync_mode):
    with sandbox(reading) as server:
        output = read_images(server, sync_mode)
        stats = server.stats()

    ids = [m.record.data["_id"] for m in output.records]
    assert sorted(ids) == sorted(i["_id"] for i in server.data.images.records)
    assert len(ids) == len(set(ids)) == IMAGES
    assert not output.errors
    # offset pages end at an empty page (one request more); cursor pages end at nextPage: false.
    assert stats["by_route"]["GET /api/images"] == requests
    assert stats["pagination_errors"] == 0


def test_a_server_that_ignores_paging_fails_the_sync_with_one_sentence():
    with sandbox("ignores_paging") as server:
        output = read_images(server, expect_failure=True)
        stats, images_url = server.stats(), f"{server.base_url}/images"

    messages = [m.trace.error.message for m in output.errors]
    assert messages, "the sync did not fail"
    assert messages[0] == (
        f"Codefresh answered page 2 of {images_url} with the same records as page 1, so it ignores the "
        "paging parameters this connector sends (page, offset, limit) and stream 'images' cannot be read completely; "
        "please report this at https://github.com/airbytehq/airbyte/issues (label source-codefresh) with the output "
        "of scripts/probe_api.py."
    )
    assert stats["by_route"]["GET /api/images"] == 2  # no loop
