"""The toy job service as a module-level ``app``, started as the services are
(``uvicorn tests.jobs.toy_service:app``, settings from the environment) in half a second: the
evaluator's app imports torch and MLflow first, 7 to 10 s before a start-up check can fail."""

from jobs import create_job_app
from tests.jobs.conftest import toy_handler, toy_router

app = create_job_app("toy", "Toy service", toy_router, toy_handler)
