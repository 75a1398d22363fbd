"""The explainer's HTTP API (port 5005): ``POST /explain`` plus the shared job routes.

Run with ``uvicorn explainer.app:app --http service.protocol:BoundedHead --port 5005`` (the command
of ``launcher.EXPLAINER``; the protocol bounds request heads). The job machinery (job records,
the background runner, ``/jobs``, ``/health``, ``/ready``, the token and error answers) comes from
``jobs.create_job_app``; this module only defines the request and validates it at once.
"""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from common import MAX_PATH_CHARS, Settings, get_settings
from explainer.attributions import MethodName
from explainer.explain import (
    DEFAULT_N_SAMPLES,
    MAX_N_SAMPLES,
    MAX_SEED,
    prepare_inputs,
    run_job,
)
from jobs import (
    JobOut,
    JobService,
    RunId,
    WaitSeconds,
    create_job_app,
    get_job_service,
    request_as_sent,
    submission_responses,
)
from runs import contract, result_current, warm_up
from service import JsonBool, JsonInt, PathText, get_app_settings

KIND = "explain"
router = APIRouter(tags=["explain"])


class ExplainIn(BaseModel):
    """What to explain; only ``run_id`` is required."""

    model_config = ConfigDict(extra="forbid")

    run_id: RunId
    data_dir: PathText | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="dataset folder or .npz under DATA_DIR whose test images are explained "
        "(default: the run's data_dir)",
    )
    n_samples: JsonInt = Field(
        DEFAULT_N_SAMPLES,
        ge=1,
        le=MAX_N_SAMPLES,
        description="test images to explain (up to half of them the most confidently wrong)",
    )
    methods: list[MethodName] | None = Field(
        None, min_length=1, description="attribution methods; default all of them"
    )
    seed: JsonInt = Field(0, ge=0, le=MAX_SEED, description="seed of the sample and random orders")
    force: JsonBool = Field(False, description="explain again even if a stored result exists")


_RESPONSES = submission_responses(
    s422="malformed body, n_samples out of range, unknown method, no model, data outside "
    "DATA_DIR or not fitting the model"
)


@router.post("/explain", response_model=JobOut, status_code=202, responses=_RESPONSES)
async def explain(
    body: ExplainIn,
    response: Response,
    http: Request,
    jobs: Annotated[JobService, Depends(get_job_service)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    wait: WaitSeconds = 0,
) -> JobOut:
    """Queue an explanation of ``run_id`` (202), or with ``?wait=`` answer the finished job (200).

    A run already explained with the same inputs returns the stored job unless ``force``.
    """
    # Checked in the same thread hop as the store call (``JobService.submit``).
    inputs = partial(
        prepare_inputs,
        body.run_id,
        settings.mlflow_tracking_uri,
        body.n_samples,
        body.methods,
        body.seed,
        settings.data_dir,
        body.data_dir,
    )
    request = request_as_sent(body, settings.data_dir)  # a repeat skips the checks
    return await jobs.respond(body.run_id, inputs, body.force, wait, response, request, client=http)


def create_app(settings: Settings | None = None, runner_options: dict | None = None) -> FastAPI:
    """The explainer app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    handler = partial(
        run_job, tracking_uri=settings.mlflow_tracking_uri, data_root=settings.data_dir
    )
    warm = partial(warm_up, settings.mlflow_tracking_uri)
    # a stored result, still the run's current one in MLflow
    there = partial(result_current, settings.mlflow_tracking_uri, contract.EXPLANATION_PATH_TAG)
    return create_job_app(KIND, "Explainer", router, handler, settings, runner_options, warm, there)


# Jobs run in a worker process, so CPU-bound explanations never hold the serving process's GIL:
# /health p99 with 50 concurrent clients fell from 482 to 100 ms (benchmarks/bench_evaluator.py).
app = create_app(runner_options={"isolate": True})
