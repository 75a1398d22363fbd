"""Validation errors in words a client can act on: the mistakes made most, which pydantic and
FastAPI word for a programmer ("String should have at least 1 character", "JSON decode error",
"Field required"), said again as one line naming the field and what to send.

``reworded(error, request, body)`` is the line for one error of a ``RequestValidationError``
(None: pydantic's own ``msg`` says it well enough); ``service.security.validation_error`` answers
with it in the error's ``msg``, the rest of the error (``loc``, ``type``, ``input``, ``ctx``)
as before. ``body_model(request)`` is the model of the route's JSON body, whose fields'
descriptions and examples the lines use.
"""

import json
import re
from typing import Any, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["body_model", "reworded"]

_EMPTY = {"string_too_short", "too_short"}
"""Types of a value shorter than its field allows (``too_short``: a field whose check runs after
its length's, as ``PathText``'s; its wording is pydantic's worst: "Value should have at least 1
item after validation, not 0")."""
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type"}
_DEFAULT = re.compile(r"\s*(?:\(default: (?P<paren>[^()]+)\)|; default (?P<semi>.+))$")
"""A description's last words naming the field's default: "(default: the run's data_dir)" or
"; default all of them"."""
_PLACEHOLDERS: dict[Any, Any] = {str: "...", int: 1, float: 1.0, bool: False}
_OUT_OF_RANGE = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def body_model(request: Request) -> type[BaseModel] | None:
    """The model of the JSON body of the route ``request`` reached (None: no route, or a body
    that is not one model)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _example_value(field: FieldInfo) -> Any:
    if field.examples:
        return field.examples[0]
    annotation = field.annotation
    if get_origin(annotation) is not None:  # Literal[...]: its first value; list[...]: a list
        args = get_args(annotation)
        return args[0] if args and isinstance(args[0], str | int) else []
    return _PLACEHOLDERS.get(annotation, "...")


def _object(model: type[BaseModel] | None) -> str:
    """``a JSON object such as {...}``: a body of ``model``'s required fields (their examples,
    else a value of their type), for a client that sent something else; with no model, where to
    look."""
    if model is None:
        return "valid JSON, as /docs describes the body"
    required = {n: _example_value(f) for n, f in model.model_fields.items() if f.is_required()}
    shown = json.dumps(required, default=str)
    return f"a JSON object such as {shown} (its fields are listed at /docs)"


def _line_and_column(text: Any, position: Any) -> str:
    """``at line L, column C`` of character ``position`` in ``text`` (its position alone where
    the text is unknown)."""
    if not isinstance(position, int):
        return ""
    if not isinstance(text, str) or position > len(text):
        return f" at character {position + 1}"
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f" at line {line}, column {column}"


def _json_kind(value: Any) -> str:
    """What JSON calls ``value``'s kind: an array, a string, a number, true/false, null."""
    if isinstance(value, bool):
        return "true/false"
    kinds = ((list, "an array"), (str, "a string"), (int | float, "a number"), (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def _empty(name: str, field: FieldInfo | None) -> str:
    """The line for a field sent empty (``""``, ``[]``): what it takes, or how to go without."""
    description = (field.description or "") if field is not None else ""
    default = _DEFAULT.search(description)
    what = description[: default.start()] if default else description
    line = f"{name} must not be empty"
    if what:
        line += f": send the {what}"
    if field is not None and not field.is_required():
        usual = default and (default["paren"] or default["semi"])
        line += f", or leave {name} out" + (f" for its default ({usual})" if usual else "")
    return line


def _range(name: str, field: FieldInfo | None, error: dict) -> str:
    """The line for a number out of its field's range: both bounds where the field has both, as
    the services' command lines word it ("n_samples must be between 1 and 64, got 65"), else the
    one pydantic checked."""
    bounds = {k: getattr(m, k) for m in (field.metadata if field else ()) for k in
              ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None}  # fmt: skip
    sent = error.get("input")
    if "ge" in bounds and "le" in bounds:
        return f"{name} must be between {bounds['ge']} and {bounds['le']}, got {sent}"
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    (key, bound), *_ = (error.get("ctx") or {"?": "its bound"}).items()
    return f"{name} must be {words.get(key, 'within')} {bound}, got {sent}"


def _field_line(error: dict, name: str, field: FieldInfo | None, model: Any) -> str | None:
    """The line for an error of the body's field ``name`` (None: pydantic's own)."""
    kind, sent = error.get("type"), error.get("input")
    if kind in _EMPTY and isinstance(sent, str | list | dict) and len(sent) == 0:
        return _empty(name, field)
    if kind == "missing":
        what = f": {field.description}" if field is not None and field.description else ""
        return f"the body has no {name}, which is required{what}; send {_object(model)}"
    if kind in _OUT_OF_RANGE:
        return _range(name, field, error)
    text = str(error.get("msg", ""))
    if kind == "value_error" and text.startswith("Value error, "):
        # a validator's own words ("must be a JSON number, not text"): the field's name first
        text = text.removeprefix("Value error, ")
        if text.startswith(name):
            return text
        return f"{name} {text}" if text.startswith("must ") else f"{name}: {text}"
    return None


def reworded(error: dict, request: Request, body: Any) -> str | None:
    """The one line answering ``error``, an item of a ``RequestValidationError``'s ``errors()``
    (``body``: its ``body``, the text sent where that is not JSON), or None to keep pydantic's
    ``msg``."""
    loc, kind = tuple(error.get("loc", ())), error.get("type")
    if not loc or loc[0] != "body":
        return None
    model = body_model(request)
    if kind == "json_invalid":
        reason = str((error.get("ctx") or {}).get("error", "invalid JSON"))[:80]
        where = _line_and_column(body, loc[1] if len(loc) > 1 else None)
        return f"the body is not valid JSON: {reason}{where}; send {_object(model)}"
    if len(loc) == 1 and model is not None:  # the body as a whole, which is one object
        if kind == "missing":
            sent_json = "application/json" in request.headers.get("content-type", "").lower()
            header = "" if sent_json else " with the header 'Content-Type: application/json'"
            return f"the request has no body; send {_object(model)}{header}"
        if kind in _NOT_AN_OBJECT:
            sent = _json_kind(error.get("input"))
            return f"the body is {sent}, not a JSON object; send {_object(model)}"
        return None
    if len(loc) != 2 or not isinstance(loc[1], str):  # deeper: pydantic's words name the place
        return None
    name = loc[1]
    field = model.model_fields.get(name) if model is not None else None
    return _field_line(error, name, field, model)
