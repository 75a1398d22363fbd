"""The framework floor for P6: FastAPI with one typed body route and a health route, nothing
else (no store, no token, no request checks, no threads). ``bench_evaluator`` loads it with the
same clients as the evaluator, so the gap between the two is what the service adds."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class EvaluateIn(BaseModel):
    run_id: str
    data_dir: str | None = None
    batch_size: int = 256
    tta: str = "none"
    force: bool = False


class JobOut(BaseModel):
    job_id: str
    kind: str
    run_id: str
    status: str
    inputs: dict
    url: str


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/evaluate", response_model=JobOut, status_code=202)
async def evaluate(body: EvaluateIn) -> JobOut:
    inputs = {"batch_size": body.batch_size}
    return JobOut(
        job_id="0" * 32, kind="evaluate", run_id=body.run_id, status="running", inputs=inputs,
        url="/jobs/" + "0" * 32,
    )  # fmt: skip
