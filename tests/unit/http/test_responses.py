"""Rendering never fails on valid JSON values."""

from __future__ import annotations

import json

from segops.errors import NotFound
from segops.http.responses import error_response, json_response


def test_integers_past_64_bits_are_written_not_refused() -> None:
    # orjson refuses them; an error echoing what a client sent must still render
    response = error_response(NotFound("nothing by that id", {"id": 2**70}), "req-1")
    assert response.status_code == 404
    assert json.loads(response.get_data()) == {
        "error": {"code": "not_found", "message": "nothing by that id", "details": {"id": 2**70}}
    }
    assert response.headers["X-Request-Id"] == "req-1"


def test_ordinary_bodies_stay_compact() -> None:
    assert json_response({"a": [1, 2], "b": None}).get_data() == b'{"a":[1,2],"b":null}'
