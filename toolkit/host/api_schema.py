"""How the control plane describes its errors: the JSON error body, the ``responses`` each route
documents, FastAPI's validation errors in the spec loader's words, and the OpenAPI document
without FastAPI's 422s (the host answers validation errors with 400) and with the 413 of the
body size limit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..specs import format_errors

__all__ = ["ErrorBody", "ERROR_STATUSES", "error_responses", "describe_request_errors", "tidy_openapi"]


class ErrorBody(BaseModel):
    """What every control-plane error answers with (the SDK turns it back into the same exception)."""

    error_code: str = Field(description="Stable machine-readable code, e.g. InvalidSpec, NotFound, Conflict.")
    message: str = Field(description="What is wrong, naming the field, and what to do.")
    details: dict[str, Any] | None = Field(None, description="Extra facts, e.g. the invalid fields.")


ERROR_STATUSES = {
    400: "Invalid path, query or body; the message names each field and its rule",
    401: "Missing or wrong admin token (`Authorization: Bearer <token>`)",
    404: "A named resource (endpoint, deployment, model, job) does not exist",
    408: "The model could not be profiled in time",
    409: "Conflicts with the current state (limits, traffic, active jobs); the message says what to do first",
    413: "The request body is larger than the control plane accepts (4 MiB)",
    424: "The model failed while being profiled",
    501: "The service behind this call is not available in this build of the host",
}

# pydantic error types meaning "the body as a whole is wrong" (not JSON, absent, not an object).
_WHOLE_BODY = ("missing", "model_attributes_type", "dict_type", "model_type")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route really returns, with the JSON error body."""
    return {code: {"model": ErrorBody, "description": ERROR_STATUSES[code]} for code in codes}


def describe_request_errors(errors: list[Any], content_type: str | None = None) -> tuple[str, list[str]]:
    """FastAPI's validation errors as one message in the spec loader's words, and the fields named.

    ``body`` is dropped from locations, so a body error reads like a spec file error
    (``traffic.blue: must be a whole number, not the boolean true``)."""
    cleaned, fields = [], []
    for e in errors:
        e = dict(e)
        loc = tuple(e.get("loc", ()))
        if loc[:1] == ("body",):
            loc = loc[1:]
        kind = e.get("type")
        whole_body = kind == "json_invalid" or (not loc and kind in _WHOLE_BODY)
        if kind == "json_invalid":
            why = (e.get("ctx") or {}).get("error") or e.get("msg")
            e["msg"], loc = f"the request body is not valid JSON ({why})", ()
        elif whole_body and kind == "missing":
            e["msg"] = "the request body is missing; send a JSON object"
        elif whole_body:
            e["msg"] = "the request body must be a JSON object of fields"
            if content_type and "json" not in content_type.lower():
                # FastAPI reads a body as JSON only when it says so (or says nothing).
                sent = content_type.split(";")[0].strip()
                e["msg"] += f"; it was sent as {sent!r}: send Content-Type: application/json"
        e["loc"] = loc
        cleaned.append(e)
        if whole_body:
            fields.append("body")
        else:  # a rule spanning fields names its field at the start of its message
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            fields.append(".".join(str(p) for p in loc) or msg.split(":")[0])
    return format_errors(cleaned), fields


def tidy_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 for every route with parameters; the host answers validation errors
    with 400 and the JSON error body instead.  So each 422 goes, and becomes a 400 where a query
    parameter or a body can actually be invalid (path parameters are plain strings)."""
    bad_request = {"description": ERROR_STATUSES[400], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            if "requestBody" in op:  # every body passes the size limit first (body_limit.py)
                responses.setdefault("413", {**bad_request, "description": ERROR_STATUSES[413]})
            if responses.pop("422", None) is None:
                continue
            if "requestBody" in op or any(p.get("in") == "query" for p in op.get("parameters", [])):
                responses.setdefault("400", bad_request)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    return schema
