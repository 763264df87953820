"""API errors: the API-only mappings on top of ``app.web.errors`` (which maps the rest once).

- domain ``ValidationError`` -> 422 with camelCase field names;
- a request that does not fit its schema (wrong type, unknown or missing field, bad query
  parameter) -> 422 with the field or parameter that is wrong; a body that is not a JSON
  object -> 400;
- ``PreconditionFailed`` (an ``If-Match`` or ``version`` that is not the current one) -> 412.
"""

from __future__ import annotations

import re
import typing
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from app.domain.errors import DomainError, ValidationError
from app.domain.fieldnames import camel_keys
from app.web.api.schemas import Problem
from app.web.errors import TITLES, handle_unexpected, problem

PROBLEM_JSON = "application/problem+json"
_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_MISSING_PARAM = re.compile(r"Missing required \w+ parameter '([^']+)'")


class PreconditionFailed(DomainError):
    """The caller's version of the schedule is not the current one (HTTP 412)."""


def validation_error(request: Request[Any, Any, Any], exc: ValidationError) -> Response[Any]:
    errors = camel_keys(exc.errors)
    return problem(422, "; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


def schema_mismatch(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors: dict[str, str] = {}
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key, message = str(item.get("key") or "body"), str(item.get("message") or "is invalid")
        if item.get("source") == "body" and key == "data":
            if match := _MISSING.fullmatch(message):
                key, message = match.group(1), "is required"
            elif match := _UNKNOWN.fullmatch(message):
                key, message = match.group(1), "unknown field"
            else:
                return problem(400, f"the request body must be a JSON object ({message.replace('`', '')})")
        elif item.get("source") != "body":
            key = _wire_name(request, key)
        errors[key] = message.replace("`", "")
    if errors and all(item.get("source") == "body" for item in extra if isinstance(item, dict)):
        errors = {**_every_body_error(request), **errors}
    if not errors and (match := _MISSING_PARAM.match(str(exc.detail))):
        errors[match.group(1)] = "is required"
    if not errors:
        return problem(400, "the request is malformed")
    return problem(422, "; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


def _every_body_error(request: Request[Any, Any, Any]) -> dict[str, str]:
    """msgspec stops at a body's first bad field; the others are checked one by one here, so a
    422 names every wrong field at once."""
    body = request._connection_state.body
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    struct = getattr(parameter, "annotation", None)
    if not isinstance(body, bytes) or not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        return {}
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    hints = typing.get_type_hints(struct)
    names = dict(zip(struct.__struct_encode_fields__, struct.__struct_fields__))
    errors: dict[str, str] = {}
    for wire in struct.__struct_encode_fields__:
        if wire not in data and wire in _required(struct):
            errors[wire] = "is required"
    for wire, value in data.items():
        if wire not in names:
            errors[str(wire)] = "unknown field"
            continue
        try:
            msgspec.convert(value, hints[names[wire]])
        except msgspec.ValidationError as exc:
            errors[wire] = str(exc).replace("`", "")
    return errors


def _required(struct: type[msgspec.Struct]) -> set[str]:
    """The wire names of fields without a default (defaults align with the last fields)."""
    fields, defaults = struct.__struct_encode_fields__, struct.__struct_defaults__
    padded = (msgspec.NODEFAULT,) * (len(fields) - len(defaults)) + tuple(defaults)
    return {name for name, default in zip(fields, padded) if default is msgspec.NODEFAULT}


def _wire_name(request: Request[Any, Any, Any], name: str) -> str:
    """A parameter as the caller wrote it (``pageSize``), not as the handler names it (``page_size``)."""
    field = request.route_handler.parsed_fn_signature.parameters.get(name)
    kwarg = getattr(field, "kwarg_definition", None)
    return getattr(kwarg, "name", None) or name


def precondition_failed(request: Request[Any, Any, Any], exc: PreconditionFailed) -> Response[Any]:
    return problem(412, str(exc))


def undecodable_body(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """msgspec raises these past Litestar's own error mapping: a body that is not UTF-8, or one
    nested past its recursion limit. Anything else of the kind is a bug: a 500, logged."""
    if isinstance(exc, UnicodeDecodeError):
        return problem(400, "the request body is not UTF-8 text")
    if "deserializing" in str(exc):
        return problem(400, "the request body is nested too deeply")
    return handle_unexpected(request, exc)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationError: validation_error,
    ValidationException: schema_mismatch,
    PreconditionFailed: precondition_failed,
    UnicodeDecodeError: undecodable_body,
    RecursionError: undecodable_body,
}

_MEANINGS = {
    400: "The request is malformed (e.g. the body is not a JSON object, or If-Match is not a version).",
    401: "No valid session or API token (send `Authorization: Bearer <token>`).",
    403: "The schedule is visible to you but you lack the permission for this action.",
    404: "No such schedule or run in your scope.",
    409: "The schedule changed while this request was being applied (read it again and retry), "
    "or the run has already finished (cancel).",
    412: "The schedule's current version is not the one given in If-Match / version.",
    413: "The request body is too large.",
    422: "Some fields or parameters are invalid; `errors` names each one.",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI response entries for the problem responses a route may give."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=_MEANINGS.get(code, TITLES.get(code, "Error")),
            generate_examples=False,
        )
        for code in codes
    }
