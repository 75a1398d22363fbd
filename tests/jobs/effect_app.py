"""A job service whose jobs leave traces (``tests.jobs.handlers.effect_handler``), for tests that
kill, stop and restart real service processes.

Run as ``python -m tests.jobs.effect_app PORT [STALE_AFTER]`` with the settings in the
environment (``STORE_DIR``, ``MAX_QUEUED_JOBS``...); jobs run in a worker process
(``isolate=True``), as in the evaluator and explainer.
"""

import sys

import uvicorn
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from common import Settings
from jobs import JobOut, JobService, WaitSeconds, create_job_app, get_job_service
from launcher import UVICORN_HTTP
from tests.jobs.handlers import effect_handler

router = APIRouter()


class EffectIn(BaseModel):
    run_id: str
    effects: str
    steps: int = 1
    step_s: float = 0.0
    publish_s: float = 0.0
    force: bool = False


@router.post("/effect", response_model=JobOut, status_code=202)
async def effect(
    body: EffectIn,
    response: Response,
    jobs: JobService = Depends(get_job_service),
    wait: WaitSeconds = 0,
) -> JobOut:
    inputs = body.model_dump(include={"effects", "steps", "step_s", "publish_s"})
    return await jobs.respond(body.run_id, inputs, body.force, wait, response)


def main(argv: list[str]) -> None:
    port = int(argv[0])
    stale_after = float(argv[1]) if len(argv) > 1 else 30.0
    options = {
        "isolate": True,
        "poll_interval": 0.05,
        "heartbeat_interval": 0.2,
        "stale_after": stale_after,
    }
    app = create_job_app("effect", "Effect service", router, effect_handler, Settings(), options)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=UVICORN_HTTP[1])


if __name__ == "__main__":
    main(sys.argv[1:])
