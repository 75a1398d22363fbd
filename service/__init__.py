"""The app shell every FastAPI service is built on (evaluator, explainer, predictor).

- ``service_app`` (``service.shell``): the app shell of every service, the predictor's too: the
  token rule and ``require_token``, ``get_app_settings``, offline ``/docs`` (``add_docs``), the
  422 handler (``validation_error``), JSON errors never a bare 500 (``add_error_answers``); the
  token gate and the body limits that act before routing (``service.intake``: ``TokenGate``,
  ``BodyLimit``, ``route_path``), and ``GET /metrics`` for Prometheus (``service.metrics``;
  ``ServiceMetrics``, ``app.state.metrics``, is where a service registers metrics of its own).
- ``check_token`` is the start-up rule for ``PIPELINE_API_TOKEN`` (``InsecureToken``);
  ``route_error`` answers a path no route takes and a method a path does not serve;
  ``unparsable_body`` makes FastAPI's 400 for a body it cannot parse a 422; ``unique_keys``
  refuses a JSON body that names a field twice; ``PathText``, ``JsonInt``, ``JsonBool``: the
  types of a path, a number and a flag in a request body.
- ``error_responses`` documents a route's error answers with their models (``ErrorOut``).
- ``service.protocol.BoundedHead``: the HTTP protocol below it all (``uvicorn --http
  service.protocol:BoundedHead``, named by import string, not imported here): 431 for a request
  line and headers over 64 KiB, before the token gate could see them.
"""

from service.answers import ErrorOut, error_responses
from service.docs import add_docs
from service.intake import BodyLimit, TokenGate, route_path
from service.metrics import ServiceMetrics
from service.security import (
    InsecureToken,
    JsonBool,
    JsonInt,
    PathText,
    add_error_answers,
    check_token,
    route_error,
    unique_keys,
    unparsable_body,
    validation_error,
)
from service.shell import get_app_settings, require_token, service_app

__all__ = [
    "BodyLimit",
    "ErrorOut",
    "InsecureToken",
    "JsonBool",
    "JsonInt",
    "PathText",
    "ServiceMetrics",
    "TokenGate",
    "add_docs",
    "add_error_answers",
    "check_token",
    "error_responses",
    "get_app_settings",
    "require_token",
    "route_error",
    "route_path",
    "service_app",
    "unique_keys",
    "unparsable_body",
    "validation_error",
]
