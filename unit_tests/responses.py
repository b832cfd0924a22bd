"""Shared helpers of the component tests: a `requests.Response` built from a body."""

from __future__ import annotations

import json

import requests


def make_response(body, status: int = 200, headers=None, url: str = "https://g.codefresh.io/api/workflow?page=1"):
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    return response
