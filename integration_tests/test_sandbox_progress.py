"""The sandbox's progress family and log storage (codefresh_sandbox/progress.py), spoken to with plain HTTP."""

from __future__ import annotations

import json
import resource
from typing import Any, Dict
from urllib.parse import urlsplit

import pytest
import requests

from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer, progress

AUTH = {"Authorization": SANDBOX_API_KEY}


@pytest.fixture(scope="module")
def sandbox():
    server = SandboxServer(
        SandboxConfig(
            builds=40, pipelines=8, unfinished_fraction=0.1, build_log_expired_every=7, build_log_missing_every=9
        )
    ).start()
    yield server
    server.stop()


def _job(server: SandboxServer, st: Any) -> Dict[str, Any]:
    answer = requests.get(f"{server.base_url}/progress/{st.doc['progress']}", headers=AUTH, timeout=10)
    assert answer.status_code == 200
    return answer.json()


def _finished(server: SandboxServer, wanted=lambda st: True) -> Any:
    return next(st for st in server.data.builds if st.finished and st.started_ms and wanted(st))


def test_a_finished_build_names_a_signed_url_on_another_origin_that_serves_its_archive(sandbox):
    st = _finished(sandbox, lambda st: progress.archived(sandbox.data, st))
    job = _job(sandbox, st)

    assert job["location"]["type"] == "gcs"
    url = job["location"]["url"]
    assert urlsplit(url).port == sandbox.storage_port != sandbox.port
    before = sandbox.stats()["storage"]
    archive = requests.get(url, timeout=10)
    assert archive.status_code == 200
    steps = archive.json()["steps"]
    steps = list(steps.values()) if isinstance(steps, dict) else steps
    texts = {s["name"]: "".join(s["logs"].values() if isinstance(s["logs"], dict) else s["logs"]) for s in steps}
    assert texts == progress.expected_log_text(sandbox.data, st)
    assert len(steps) == progress.expected_log_steps(sandbox.data, st)
    assert all(isinstance(s["creationTimeStamp"], int) for s in steps)
    after = sandbox.stats()["storage"]
    assert after["requests"] == before["requests"] + 1 and after["with_authorization"] == before["with_authorization"]


def test_the_storage_counts_requests_that_carry_an_authorization_header(sandbox):
    url = _job(sandbox, _finished(sandbox, lambda st: progress.archived(sandbox.data, st)))["location"]["url"]
    before = sandbox.stats()["storage"]["with_authorization"]
    requests.get(url, headers=AUTH, timeout=10)
    assert sandbox.stats()["storage"]["with_authorization"] == before + 1


def test_a_running_build_has_a_live_location_and_no_archive(sandbox):
    live = next(st for st in sandbox.data.builds if not st.finished)
    job = _job(sandbox, live)
    assert job["location"]["type"] == "firebase" and job["location"]["url"].startswith("https://")
    path = progress.archive_path(sandbox.data, live)
    # Even a validly signed URL for it finds nothing.
    url = progress.signed_url(sandbox, live)
    assert urlsplit(url).path == path and requests.get(url, timeout=10).status_code == 404


def test_an_expired_url_answers_403_and_an_altered_url_403_signature_mismatch(sandbox):
    expired = _finished(sandbox, lambda st: (st.index + 1) % 7 == 0)
    answer = requests.get(_job(sandbox, expired)["location"]["url"], timeout=10)
    assert answer.status_code == 403 and b"Request has expired" in answer.content

    good = _job(sandbox, _finished(sandbox, lambda st: progress.archived(sandbox.data, st)))["location"]["url"]
    reencoded = requests.get(good.replace("%2F", "/"), timeout=10)
    assert reencoded.status_code == 403 and b"SignatureDoesNotMatch" in reencoded.content


def test_a_missing_archive_answers_404_no_such_key(sandbox):
    missing = _finished(sandbox, lambda st: (st.index + 1) % 9 == 0 and (st.index + 1) % 7)
    answer = requests.get(_job(sandbox, missing)["location"]["url"], timeout=10)
    assert answer.status_code == 404 and b"NoSuchKey" in answer.content


@pytest.mark.parametrize("shape", ["list", "object"])
def test_the_shape_switch_makes_steps_and_logs_arrays_or_objects(shape):
    with SandboxServer(SandboxConfig(builds=10, pipelines=4, unfinished_fraction=0, build_log_shape=shape)) as server:
        st = _finished(server)
        doc = requests.get(_job(server, st)["location"]["url"], timeout=10).json()
    kind = list if shape == "list" else dict
    assert isinstance(doc["steps"], kind)
    steps = doc["steps"].values() if isinstance(doc["steps"], dict) else doc["steps"]
    assert all(isinstance(s["logs"], kind) for s in steps)


def test_mixed_shapes_give_every_combination_across_builds():
    with SandboxServer(SandboxConfig(builds=60, pipelines=4, unfinished_fraction=0)) as server:
        shapes = {progress._shapes(server.data, st) for st in server.data.builds}
    assert shapes == {("list", "list"), ("list", "object"), ("object", "list"), ("object", "object")}


def test_delete_on_progress_terminates_a_running_build_and_is_counted():
    with SandboxServer(SandboxConfig(builds=50, pipelines=4, unfinished_fraction=0.1)) as server:
        live = next(st for st in server.data.builds if not st.finished)
        answer = requests.delete(f"{server.base_url}/progress/{live.doc['progress']}", headers=AUTH, timeout=10)
        assert answer.status_code == 200
        assert server.stats()["progress_deletes"] == 1
        assert server.data.get_build(live.doc["id"])["status"] == "terminated"


def test_download_gives_the_whole_log_as_one_text_page(sandbox):
    st = _finished(sandbox)
    answer = requests.get(f"{sandbox.base_url}/progress/download/{st.doc['progress']}", headers=AUTH, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/")
    for name, text in progress.expected_log_text(sandbox.data, st).items():
        assert f"Step: {name}\n{text}" in answer.text


def test_expected_counts_have_build_logs_for_readable_archives_only(sandbox):
    data = sandbox.data
    readable = [st for st in data.builds if progress.archived(data, st)]
    assert 0 < len(readable) < sum(1 for st in data.builds if st.finished)
    assert sandbox.expected()["build_logs"] == sum(progress.expected_log_steps(data, st) for st in readable)


def test_a_huge_log_is_streamed_with_its_length_and_the_sandbox_does_not_hold_it():
    config = SandboxConfig(builds=6, pipelines=3, unfinished_fraction=0, build_log_huge_every=3, build_log_huge_mb=40)
    with SandboxServer(config) as server:
        st = _finished(server, lambda st: progress.is_huge(server.data, st))
        url = _job(server, st)["location"]["url"]
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        answer = requests.get(url, stream=True, timeout=30)
        received = sum(len(chunk) for chunk in answer.iter_content(1 << 16))
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert received == int(answer.headers["Content-Length"]) > 40 * 1024 * 1024
    assert grown_mb < 20, f"serving a 40 MB log raised this process's peak memory by {grown_mb:.0f} MB"
    assert progress.huge_log_size(server.data) > 40 * 1024 * 1024


def test_a_bad_shape_is_refused():
    with pytest.raises(ValueError, match="build_log_shape"):
        SandboxServer(SandboxConfig(build_log_shape="yaml"))


def test_storage_faults_use_the_same_rules(sandbox):
    url = _job(sandbox, _finished(sandbox, lambda st: progress.archived(sandbox.data, st)))["location"]["url"]
    sandbox.set_faults(
        [{"match": {"path": f"^/{progress.STORAGE_BUCKET}/"}, "kind": "status", "status": 503, "times": 1}]
    )
    try:
        assert requests.get(url, timeout=10).status_code == 503
        assert requests.get(url, timeout=10).status_code == 200
    finally:
        sandbox.clear_faults()
    assert json.loads(requests.get(f"{sandbox.url}/_sandbox/stats", timeout=10).content)["storage"]["requests"] > 0
