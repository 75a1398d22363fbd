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


def _value(value: Any) -> Any:
    """A filter value as SQLite compares it with ``json_extract``."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict | list | tuple):
        raise NotImplementedError("the embedded store compares only scalars and datetimes")
    return value


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode(doc: dict) -> str:
    """A document as the JSON text of its row (datetimes as ISO-8601 UTC strings)."""
    return json.dumps(doc, default=_encode_default, separators=(",", ":"))


def _encode_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"cannot store {type(value).__name__} in the embedded store")


def decode(value: Any) -> Any:
    """A stored value (parsed JSON) as the document held it: ISO-8601 UTC strings as datetimes."""
    if isinstance(value, str) and _DATE.match(value):
        return datetime.fromisoformat(value)
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
                clauses.append(f"{expr} {_OPS[op]} ?")
                params.append(_value(value))
            elif op == "$ne":
                clauses.append(f"{expr} IS NOT ?")
                params.append(_value(value))
            elif op in ("$in", "$nin"):
                values = [_value(v) for v in value]
                test = f"{expr} IN ({','.join('?' * len(values))})" if values else "0"
                if None in values:
                    test = f"({test} OR {expr} IS NULL)"
                clauses.append(test if op == "$in" else f"NOT COALESCE({test}, 0)")
                params.extend(values)
            elif op == "$exists":
                path = expr.replace("json_extract(", "json_type(")
                clauses.append(f"{path} IS {'NOT ' if value else ''}NULL")
            else:
                raise NotImplementedError(f"the embedded store does not support {op}")
    return " AND ".join(clauses) or "1", params


def sql_order(sort) -> str:
    """A pymongo ``sort`` (a key, or ``(key, 1 or -1)`` pairs) as an SQL ``ORDER BY``."""
    if not sort:
        return ""
    if isinstance(sort, str):
        sort = [(sort, 1)]
    return " ORDER BY " + ", ".join(f"{sql_field(k)} {'DESC' if d < 0 else 'ASC'}" for k, d in sort)


def apply_update(doc: dict, update: dict) -> dict:
    """``doc`` changed by ``update`` (``$set``, ``$unset``, ``$inc``; dotted keys allowed)."""
    doc = json.loads(encode(doc))  # a deep copy with datetimes as stored
    for op, fields in update.items():
        if op not in ("$set", "$unset", "$inc"):
            raise NotImplementedError(f"the embedded store does not support {op}")
        for key, value in fields.items():
            *parents, last = key.split(".")
            target = doc
            for part in parents:
                target = target.setdefault(part, {})
            if op == "$set":
                target[last] = json.loads(encode(value))
            elif op == "$unset":
                target.pop(last, None)
            else:
                target[last] = target.get(last, 0) + value
    return decode(doc)
