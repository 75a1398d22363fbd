"""How the embedded store (``jobs.embedded``) holds documents and asks for them: a document as
the JSON text of one table row, a Mongo filter or sort as SQL over ``json_extract``, and the
update operators applied to a document."""

import json
import re
from datetime import UTC, datetime
from typing import Any

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
_OPS = {"$eq": "=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_ESCAPE = "\ue000"  # a private-use character: a string stored with it first is the rest, as is


def _value(value: Any) -> Any:
    """A filter value as SQLite compares it with ``json_extract``."""
    if isinstance(value, dict | list | tuple):
        raise NotImplementedError("the embedded store compares only scalars and datetimes")
    return _stored(value)


def _stored(value: Any) -> Any:
    """``value`` as it is stored: datetimes as ISO-8601 UTC strings, and the strings that would
    read as one (or that begin with ``_ESCAPE``) behind ``_ESCAPE``, so that they stay strings."""
    if isinstance(value, str):
        return _ESCAPE + value if value.startswith(_ESCAPE) or _DATE.match(value) else value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    return value


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode(doc: dict) -> str:
    """A document as the JSON text of its row (``_stored``)."""
    return _dumps(_stored(doc))


def _dumps(stored: Any) -> str:
    return json.dumps(stored, default=_encode_default, separators=(",", ":"))


def _encode_default(value: Any) -> Any:
    raise TypeError(f"cannot store {type(value).__name__} in the embedded store")


def decode(value: Any) -> Any:
    """A stored value (parsed JSON) as the document held it: ISO-8601 UTC strings as datetimes,
    escaped strings without ``_ESCAPE``. (Files written before the escape hold date-like strings
    unescaped: those read as datetimes, as they always did.)"""
    if isinstance(value, str):
        if _DATE.match(value):
            return datetime.fromisoformat(value)
        return value[1:] if value.startswith(_ESCAPE) else value
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def sql_field(key: str) -> str:
    """The SQL expression of a (dotted) document field."""
    if key == "_id":
        return "_id"
    parts = key.split(".")
    if not all(NAME.match(p) for p in parts):
        raise NotImplementedError(f"unsupported field name {key!r} in the embedded store")
    return "json_extract(doc, '$" + "".join(f'."{p}"' for p in parts) + "')"


def sql_filter(filter: dict | None) -> tuple[str, list]:
    """A Mongo filter as an SQL condition and its parameters."""
    clauses, params = [], []
    for key, cond in (filter or {}).items():
        expr = sql_field(key)
        ops = cond if isinstance(cond, dict) and any(k.startswith("$") for k in cond) else None
        for op, value in (ops or {"$eq": cond}).items():
            if op in _OPS and value is None:
                clauses.append(f"{expr} IS NULL" if op == "$eq" else "0")
            elif op in _OPS:
                clauses.append(f"({expr} {_OPS[op]} ?{_same_type(expr, value)})")
                params.append(_value(value))
            elif op == "$ne" and _same_type(expr, value):
                clauses.append(f"NOT COALESCE({expr} = ?{_same_type(expr, value)}, 0)")
                params.append(_value(value))
            elif op == "$ne":
                clauses.append(f"{expr} IS NOT ?")
                params.append(_value(value))
            elif op in ("$in", "$nin"):
                others = [_value(v) for v in value if not _same_type(expr, v)]
                typed = [v for v in value if _same_type(expr, v)]
                tests = [f"{expr} IN ({','.join('?' * len(others))})"] if others else []
                tests += [f"({expr} = ?{_same_type(expr, v)})" for v in typed]
                if None in others:
                    tests.append(f"{expr} IS NULL")
                test = f"({' OR '.join(tests)})" if tests else "0"
                clauses.append(test if op == "$in" else f"NOT COALESCE({test}, 0)")
                params.extend([*others, *typed])
            elif op == "$exists":
                path = expr.replace("json_extract(", "json_type(")
                clauses.append(f"{path} IS {'NOT ' if value else ''}NULL")
            else:
                raise NotImplementedError(f"the embedded store does not support {op}")
    return " AND ".join(clauses) or "1", params


def _same_type(expr: str, value: Any) -> str:
    """The SQL that keeps a bool from matching a number, and a number a bool, as MongoDB does
    (``json_extract`` reads ``true`` as 1); empty for other values and for ``_id``."""
    if isinstance(value, bool):
        kinds = "('true', 'false')"
    elif isinstance(value, int | float) and expr != "_id":
        kinds = "('integer', 'real')"
    else:
        return ""
    return f" AND {expr.replace('json_extract(', 'json_type(', 1)} IN {kinds}"


def sql_order(sort) -> str:
    """A pymongo ``sort`` (a key, or ``(key, 1 or -1)`` pairs) as an SQL ``ORDER BY``."""
    if not sort:
        return ""
    if isinstance(sort, str):
        sort = [(sort, 1)]
    return " ORDER BY " + ", ".join(f"{sql_field(k)} {'DESC' if d < 0 else 'ASC'}" for k, d in sort)


def apply_update(stored: str, update: dict) -> str:
    """The JSON text of a row (as ``encode`` wrote it) changed by ``update`` (``$set``,
    ``$unset``, ``$inc``; dotted keys allowed)."""
    doc = json.loads(stored)
    for op, fields in update.items():
        if op not in ("$set", "$unset", "$inc"):
            raise NotImplementedError(f"the embedded store does not support {op}")
        for key, value in fields.items():
            *parents, last = key.split(".")
            target = doc
            for part in parents:
                if op == "$unset" and not isinstance(target.get(part), dict):
                    break  # nothing there to remove: no parent is made for it
                target = target.setdefault(part, {})
            else:
                if op == "$set":
                    target[last] = _stored(value)
                elif op == "$unset":
                    target.pop(last, None)
                else:
                    target[last] = target.get(last, 0) + value
    return _dumps(doc)
