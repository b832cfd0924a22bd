"""Images family: the account's Docker images, paged in one of three readings of the evidence
(`SandboxConfig.images_paging`, docs/api-notes.md 8.1):

    GET /images   offset (default)   {"docs": [...], "total", "limit", "offset"}    limit (<= 100), offset; no
                                     pagination object (the spec's parameters, the CLI, every client seen)
                  cursor             {"docs": [...], "pagination": {"page", "nextPage": true|false, "pageSize"}}
                                     limit (<= 100), page = 1, 2, 3 ... in order within a pagination session, like
                                     /workflow (Codefresh's 2021 paging KB says images moved to that cursor)
                  ignores_paging     {"docs": [...], "total", "limit", "offset"}: always the newest 25 images,
                                     whatever limit, offset or page say (a server that ignores the parameters)

Newest first in every reading.
"""

from __future__ import annotations

from typing import Any, Dict

from .common import (
    BRANCHES,
    DAY_MS,
    DEFAULT_LIMIT,
    Collection,
    Gen,
    Request,
    Response,
    capped_limit,
    iso,
    offset_window,
    raw_json,
    route,
)

IMAGES_PAGING = ("offset", "cursor", "ignores_paging")


def make_image(g: Gen, created: int) -> Dict[str, Any]:
    repo = g.repo()
    full = f"{repo['owner']}/{repo['name']}"
    digest = g.hex(64)
    commit = g.hex(40) if g.chance(0.85) else None
    branch = g.pick(BRANCHES) if commit else None
    tag_names = ["latest"] if g.chance(0.3) else []
    if commit:
        tag_names.append(commit[:7])
    if branch:
        tag_names.append(branch.replace("/", "-"))
    registry = g.pick(["r.cfcr.io", "docker.io", "quay.io", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"])
    return {
        "_id": g.oid(created),
        "internalImageId": g.hex(64),
        "internalName": f"{registry}/{full}:{tag_names[0] if tag_names else 'untagged'}",
        "imageName": full,
        "imageDisplayName": full,
        "tags": [
            {"_id": g.oid(created), "tag": t, "registry": registry, "repository": full, "created": iso(created)}
            for t in tag_names
        ],
        "created": iso(created),
        "size": g.randint(8_000_000, 1_500_000_000),
        "sha": "sha256:" + digest,
        "metadata": {
            "annotations": {"org.opencontainers.image.source": f"https://github.com/{full}"} if g.chance(0.5) else {}
        },
        "repoDigest": f"{registry}/{full}@sha256:{digest}" if g.chance(0.8) else None,
        "hash": g.hex(64),
        "branch": branch,
        "commit": commit,
    }


def generate(g: Gen, cfg: Any, data: Any) -> None:
    span = cfg.build_days * DAY_MS
    createds = sorted(g.anchor_ms - span + int(g.rng.random() * (span - 60_000)) for _ in range(cfg.images))
    for i in range(1, len(createds)):
        if createds[i] <= createds[i - 1]:
            createds[i] = createds[i - 1] + 1
    data.images = Collection([make_image(g, c) for c in createds])  # oldest first; listed newest first


def list_images(req: Request) -> Response:
    images = req.data.images
    newest_first = range(len(images) - 1, -1, -1)
    mode = req.data.config.images_paging
    if mode == "cursor":
        limit = capped_limit(req)
        page = req.int_arg("page", 1, minimum=-(10**9))
        snap = req.app.sessions.turn("images", req, page, lambda: newest_first)
        window = snap[(page - 1) * limit : page * limit]
        next_page = b"true" if page * limit < len(snap) else b"false"
        return raw_json(
            images.wrap(
                b'{"docs":[',
                window,
                b'],"pagination":{"page":%d,"nextPage":%s,"pageSize":%d}}' % (page, next_page, limit),
            )
        )
    if mode == "ignores_paging":
        limit, offset, window = DEFAULT_LIMIT, 0, newest_first[:DEFAULT_LIMIT]
    else:
        window = offset_window(req, len(images))
        limit, offset = capped_limit(req), window.start
        window = newest_first[window.start : window.stop]
    return raw_json(
        images.wrap(b'{"docs":[', window, b'],"total":%d,"limit":%d,"offset":%d}' % (len(images), limit, offset))
    )


ROUTES = [route("GET", "/images", list_images)]
