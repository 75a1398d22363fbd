"""Jobs under faults, with real service processes (uvicorn) and real worker processes: ``kill -9``,
SIGTERM, SIGSTOP of a service, cancelling, a full queue.

The jobs are ``tests.jobs.handlers.effect_handler``: each start and each publication is a line
in an effects file, so that a test counts what every process did.
"""

import itertools
import os
import signal
import threading
import time

import pytest
import requests

from jobs import JobStore, get_database
from tests.jobs.conftest import alive, children, make_settings, wait_until
from tests.jobs.handlers import effects


def submit(url: str, effects_file, steps: int, step_s: float, **extra) -> dict:
    body = {"run_id": "r1", "effects": str(effects_file), "steps": steps, "step_s": step_s}
    answer = requests.post(f"{url}/effect", json={**body, **extra}, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    return answer.json()


def started_worker(effects_file) -> int:
    """The pid of the worker once the job has started in it."""
    lines = wait_until(lambda: [e for e in effects(effects_file) if e[0] == "start"], 120, "start")
    return int(lines[-1][1])


def job(url: str, job_id: str) -> dict:
    return requests.get(f"{url}/jobs/{job_id}", timeout=30).json()


def test_kill_9_of_the_service_ends_its_worker(effect_service, tmp_path):
    proc, url = effect_service()
    submit(url, tmp_path / "effects", steps=600, step_s=0.1)
    worker = started_worker(tmp_path / "effects")
    proc.kill()
    proc.wait(30)
    wait_until(lambda: not alive(worker), 30, f"the exit of orphaned worker {worker}")


def test_a_job_of_a_killed_service_is_published_once_after_restart(effect_service, tmp_path):
    proc, url = effect_service(stale_after=1)
    queued = submit(url, tmp_path / "effects", steps=40, step_s=0.1)
    worker = started_worker(tmp_path / "effects")
    proc.kill()
    proc.wait(30)
    _, url = effect_service(stale_after=1)
    done = wait_until(
        lambda: (j := job(url, queued["job_id"]))["status"] == "succeeded" and j, 120, "success"
    )
    wait_until(lambda: not alive(worker), 30, f"the exit of orphaned worker {worker}")
    published = [e for e in effects(tmp_path / "effects") if e[0] == "publish"]
    assert published == [["publish", queued["job_id"], "2"]] and done["attempts"] == 2


def test_a_job_of_a_killed_service_is_requeued_at_restart_not_after_the_timeout(
    effect_service, tmp_path
):
    proc, url = effect_service(stale_after=600)  # the heartbeat timeout alone: 10 minutes
    queued = submit(url, tmp_path / "effects", steps=600, step_s=0.1)
    started_worker(tmp_path / "effects")
    proc.kill()
    proc.wait(30)
    _, url = effect_service(stale_after=600)  # same machine: it sees the process has ended
    moved = wait_until(lambda: (j := job(url, queued["job_id"]))["attempts"] == 2 and j, 60,
                       "the second attempt")  # fmt: skip
    assert "its process has ended" in moved["note"]


def test_sigterm_ends_the_worker_and_requeues_its_job(effect_service, tmp_path):
    proc, url = effect_service()
    queued = submit(url, tmp_path / "effects", steps=600, step_s=0.1)
    worker = started_worker(tmp_path / "effects")
    proc.terminate()
    proc.wait(60)  # uvicorn re-raises the signal after its graceful shutdown: the code is -15
    assert not alive(worker)
    store = JobStore(get_database(make_settings(tmp_path)))
    requeued = store.get(queued["job_id"])
    assert requeued["status"] == "queued" and "shut down" in requeued["note"]


def test_sigterm_answers_a_waiting_request_at_once_and_requeues_its_job(effect_service, tmp_path):
    """uvicorn's graceful shutdown waits for open requests: a ?wait=600 held the stop for 600 s
    (past Kubernetes' grace period, whose SIGKILL left the job unrequeued)."""
    proc, url = effect_service()
    body = {"run_id": "r1", "effects": str(tmp_path / "effects"), "steps": 600, "step_s": 0.1}
    answers: list[requests.Response] = []

    def wait_for_the_job() -> None:
        answers.append(requests.post(f"{url}/effect?wait=600", json=body, timeout=120))

    waiting = threading.Thread(target=wait_for_the_job)
    waiting.start()
    started_worker(tmp_path / "effects")
    time.sleep(0.5)  # the request is waiting by now (it queued the job the worker started)
    proc.terminate()
    proc.wait(60)
    waiting.join(30)
    assert answers and answers[0].status_code == 202, answers
    assert answers[0].json()["status"] in ("queued", "running")  # as last seen
    store = JobStore(get_database(make_settings(tmp_path)))
    assert store.get(answers[0].json()["job_id"])["status"] == "queued"  # requeued at shutdown


@pytest.mark.parametrize("cancel_first", [False, True])  # the worker terminated, or killed
def test_a_stopped_service_logs_no_leaked_semaphore(effect_service, tmp_path, cancel_first):
    proc, url = effect_service()
    queued = submit(url, tmp_path / "effects", steps=600, step_s=0.1)
    started_worker(tmp_path / "effects")
    helpers = children(proc.pid)  # the worker and multiprocessing's resource tracker
    if cancel_first:
        requests.delete(f"{url}/jobs/{queued['job_id']}", timeout=30)
    proc.terminate()
    proc.wait(60)
    # The tracker writes its warnings to the service's log as it ends, after the service.
    wait_until(lambda: not any(alive(pid) for pid in helpers), 30, "the end of the helpers")
    log = (tmp_path / f"service-{url.rsplit(':', 1)[1]}.log").read_text()
    assert "leaked semaphore" not in log


def test_an_attempt_taken_over_while_its_service_was_stopped_cannot_publish(
    effect_service, tmp_path
):
    first, url = effect_service(stale_after=30)
    queued = submit(url, tmp_path / "effects", steps=20, step_s=0.1)
    old_worker = started_worker(tmp_path / "effects")
    os.kill(first.pid, signal.SIGSTOP)  # no heartbeats from now on; its worker lives on
    _, other = effect_service(stale_after=1)
    done = wait_until(
        lambda: (j := job(other, queued["job_id"]))["status"] == "succeeded" and j, 120, "success"
    )
    os.kill(first.pid, signal.SIGCONT)
    wait_until(lambda: not alive(old_worker), 60, "the end of the taken-over attempt")
    published = [e for e in effects(tmp_path / "effects") if e[0] == "publish"]
    assert published == [["publish", queued["job_id"], "2"]]
    assert done["result"]["attempt"] == 2 and done["result"]["pid"] != old_worker


def test_cancelling_a_running_job_ends_its_worker(effect_service, tmp_path):
    _, url = effect_service()
    queued = submit(url, tmp_path / "effects", steps=600, step_s=0.1)
    worker = started_worker(tmp_path / "effects")
    answer = requests.delete(f"{url}/jobs/{queued['job_id']}", timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    wait_until(lambda: not alive(worker), 30, f"the end of worker {worker}")
    assert job(url, queued["job_id"])["status"] == "cancelled"
    assert not [e for e in effects(tmp_path / "effects") if e[0] == "publish"]
    assert requests.get(f"{url}/health", timeout=30).status_code == 200


def test_a_job_publishing_its_result_cannot_be_cancelled(effect_service, tmp_path):
    _, url = effect_service()
    queued = submit(url, tmp_path / "effects", steps=1, step_s=0, publish_s=3)
    wait_until(lambda: [e for e in effects(tmp_path / "effects") if e[0] == "fenced"], 120, "fence")
    answer = requests.delete(f"{url}/jobs/{queued['job_id']}", timeout=30)
    assert answer.status_code == 409 and "is publishing its result" in answer.json()["detail"]
    done = wait_until(lambda: (j := job(url, queued["job_id"]))["status"] != "running" and j, 60,
                      "the end of the job")  # fmt: skip
    assert done["status"] == "succeeded"
    assert [e[0] for e in effects(tmp_path / "effects")] == ["start", "fenced", "publish"]


def test_a_cancelled_queued_job_never_runs(effect_service, tmp_path):
    _, url = effect_service()
    submit(url, tmp_path / "busy", steps=600, step_s=0.1)
    started_worker(tmp_path / "busy")
    waiting = submit(url, tmp_path / "effects", steps=1, step_s=0)
    assert requests.delete(f"{url}/jobs/{waiting['job_id']}", timeout=30).json()["status"] == (
        "cancelled"
    )
    again = requests.delete(f"{url}/jobs/{waiting['job_id']}", timeout=30)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert effects(tmp_path / "effects") == []


def test_a_full_queue_answers_429_with_retry_after(effect_service, tmp_path):
    _, url = effect_service(MAX_QUEUED_JOBS="2")
    submit(url, tmp_path / "busy", steps=600, step_s=0.1)
    started_worker(tmp_path / "busy")
    for i in range(2):
        submit(url, tmp_path / f"queued{i}", steps=1, step_s=0)
    body = {"run_id": "r1", "effects": str(tmp_path / "late"), "steps": 1}
    answer = requests.post(f"{url}/effect", json=body, timeout=30)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert "MAX_QUEUED_JOBS=2" in answer.json()["detail"]


def test_job_reports_progress_and_get_with_wait_answers_each_change(effect_service, tmp_path):
    _, url = effect_service()
    queued = submit(url, tmp_path / "effects", steps=4, step_s=1.0)
    seen = [job(url, queued["job_id"])]
    while seen[-1]["status"] not in ("succeeded", "failed"):
        answer = requests.get(f"{url}/jobs/{queued['job_id']}", params={"wait": 60}, timeout=90)
        seen.append(answer.json())
    states = [(j["status"], j["progress"]["fraction"], j["progress"]["stage"]) for j in seen]
    assert all(a != b for a, b in itertools.pairwise(states)), states
    assert ("running", 0.5, "step 2/4") in states
    assert states[-1] == ("succeeded", 1.0, "done")
