"""JSON responses from Pydantic models, serialised once.

A route that returns a model makes FastAPI validate and serialise it again against its
``response_model``, and for a plain ``def`` route it does so in a worker thread: one more
thread hop per request, which on two busy cores costs more than the work itself. Routes return
``json_response(model)`` instead; their ``response_model`` still documents them in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from starlette.responses import Response


def json_response(content: BaseModel | Sequence[BaseModel], status_code: int = 200) -> Response:
    """``content`` (one model or a list of them) as an ``application/json`` response."""
    if isinstance(content, BaseModel):
        body = content.model_dump_json()
    else:
        body = "[" + ",".join(item.model_dump_json() for item in content) + "]"
    return Response(body, status_code=status_code, media_type="application/json")
