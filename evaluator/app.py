"""The evaluator's HTTP API (port 5006): ``POST /evaluate`` plus the shared job routes.

Run with ``uvicorn evaluator.app:app --http service.protocol:BoundedHead --port 5006`` (the command
of ``launcher.EVALUATOR``; the protocol bounds request heads). The job machinery (MongoDB job
records, the background runner, ``/jobs``, ``/health``, ``/ready``, the token and error answers)
comes from ``jobs.create_job_app``; this module only defines the request and validates it at
once.
"""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from common import MAX_PATH_CHARS, Settings, get_settings
from evaluator.checks import prepare_inputs
from evaluator.evaluate import run_job
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
from runs import contract, inference, result_current, warm_up
from service import JsonBool, JsonInt, PathText, get_app_settings

KIND = "evaluate"
router = APIRouter(tags=["evaluate"])


class EvaluateIn(BaseModel):
    """What to evaluate; only ``run_id`` is required."""

    model_config = ConfigDict(extra="forbid")

    run_id: RunId
    data_dir: PathText | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="dataset folder or .npz under DATA_DIR (default: the run's data_dir)",
    )
    batch_size: JsonInt = Field(
        inference.BATCH_SIZE,
        ge=1,
        le=inference.MAX_BATCH_SIZE,
        description="images per inference batch",
    )
    tta: inference.Tta = Field(
        "none", description="test-time augmentation: average the image and its flips"
    )
    force: JsonBool = Field(False, description="evaluate again even if a stored result exists")


_RESPONSES = submission_responses(
    s422="malformed body, run without model, data set missing, outside DATA_DIR or not "
    "fitting the model"
)


@router.post("/evaluate", response_model=JobOut, status_code=202, responses=_RESPONSES)
async def evaluate(
    body: EvaluateIn,
    response: Response,
    http: Request,
    jobs: Annotated[JobService, Depends(get_job_service)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    wait: WaitSeconds = 0,
) -> JobOut:
    """Queue an evaluation of ``run_id`` (202), or with ``?wait=`` answer the finished job (200).

    A run already evaluated with the same inputs returns the stored job unless ``force``.
    """
    # Checked in the same thread hop as the store call (``JobService.submit``).
    inputs = partial(
        prepare_inputs,
        body.run_id,
        settings.mlflow_tracking_uri,
        settings.data_dir,
        body.data_dir,
        body.batch_size,
        body.tta,
    )
    request = request_as_sent(body, settings.data_dir)  # a repeat skips the checks
    return await jobs.respond(body.run_id, inputs, body.force, wait, response, request, client=http)


def create_app(settings: Settings | None = None, runner_options: dict | None = None) -> FastAPI:
    """The evaluator app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    handler = partial(
        run_job, tracking_uri=settings.mlflow_tracking_uri, data_root=settings.data_dir
    )
    warm = partial(warm_up, settings.mlflow_tracking_uri)
    # a stored result, still the run's current one in MLflow
    there = partial(result_current, settings.mlflow_tracking_uri, contract.EVALUATION_PATH_TAG)
    return create_job_app(KIND, "Evaluator", router, handler, settings, runner_options, warm, there)


# Jobs run in a worker process, so CPU-bound evaluations never hold the serving process's GIL:
# /health p99 with 50 concurrent clients fell from 482 to 100 ms (benchmarks/bench_evaluator.py).
app = create_app(runner_options={"isolate": True})
