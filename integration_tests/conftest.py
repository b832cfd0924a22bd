"""Fixtures that integration test modules share."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest
import requests

from source_codefresh.graphql import GRAPHQL_PATH


@pytest.fixture
def sent_bodies(monkeypatch) -> Iterator[List[Dict[str, Any]]]:
    """The JSON body of every request the connector sends to the GraphQL API during the test."""
    bodies: List[Dict[str, Any]] = []
    send = requests.Session.send

    def recording(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        if GRAPHQL_PATH in str(request.url):
            bodies.append(json.loads(request.body or b"null"))
        return send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording)
    yield bodies
