"""The predictor over real HTTP: readiness, predictions, errors, the token, following the alias."""

import threading
import time

import mlflow
import numpy as np
import requests
from PIL import Image

from dashboard.choose import choose_run
from mlpipeline_model import DECODING_VERSION
from predictor import ModelHolder
from predictor.app import create_app
from tests.conftest import LiveServer, log_untrained_run
from tests.images import png_declaring
from tests.predictor.conftest import AUTH, TOKEN, ClientLoop, get_ready, post_images, wait_ready


def test_not_ready_before_a_run_is_chosen_and_says_why(predictor, settings):
    assert requests.get(f"{predictor}/health", timeout=10).status_code == 200
    deadline = time.monotonic() + 60
    while "still looking up" in (r := get_ready(predictor)).text:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert r.status_code == 503
    assert f"no version of {settings.model_name} has the alias 'champion'" in r.json()["detail"]
    assert "python -m dashboard.choose" in r.json()["detail"]
    # no files: requests sends no body at all, which is not multipart/form-data
    assert post_images(predictor, []).status_code == 415


def test_predicts_each_image_with_the_served_version(predictor, settings, served_runs,
                                                     demo_data):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    images = sorted((demo_data / "test").rglob("*.png"))[:3]
    r = post_images(predictor, images)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model_name"], body["version"], body["run_id"]) == (
        settings.model_name,
        "1",
        served_runs[0],
    )
    assert [p["file"] for p in body["predictions"]] == [p.name for p in images]
    assert body["decoding_note"] is None  # logged by this code: decoded as in its training
    # trained on PNGs without --modality: it says that DICOM files of any modality are classified
    assert body["modalities"] is None and "records no modality" in body["modality_note"]
    assert body["ood_check"] is None  # logged without the out-of-distribution check
    for p in body["predictions"]:
        assert p["ood_score"] is None and p["out_of_distribution"] is None
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5
        assert p["predicted_class"] == max(p["probabilities"], key=p["probabilities"].get)


def test_bad_image_is_422_naming_the_file(predictor, settings, served_runs, demo_data,
                                         tmp_path):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    good = sorted((demo_data / "test").rglob("*.png"))[0]
    r = post_images(predictor, [good, bad])
    assert r.status_code == 422
    assert "file 'broken.png' (#2 of 2) is not a usable image" in r.json()["detail"]
    assert "nothing was predicted: leave it out or replace it" in r.json()["detail"]


def test_a_file_sent_without_a_name_is_named_by_its_place(predictor, settings, served_runs):
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    files = [("files", ("", b"not an image", "image/png"))] * 2
    r = requests.post(f"{predictor}/predict", files=files, headers=AUTH, timeout=60)
    assert r.status_code == 422, r.text
    assert "file 'file 2' (#2 of 2) is not a usable image" in r.json()["detail"]


def test_every_bad_image_of_a_request_is_named_with_its_place(predictor, settings, served_runs,
                                                             demo_data, tmp_path):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    text, empty = tmp_path / "scan.png", tmp_path / "empty.png"
    text.write_text("not an image")
    empty.write_bytes(b"")
    good = sorted((demo_data / "test").rglob("*.png"))[0]
    r = post_images(predictor, [good, text, good, empty])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("2 of 4 files are not usable images; nothing was predicted")
    assert "file 'scan.png' (#2 of 4)" in detail and "file 'empty.png' (#4 of 4)" in detail


def test_a_thumbnail_is_422_naming_the_file_and_its_size(predictor, settings, served_runs,
                                                         tmp_path):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    thumb = tmp_path / "thumb.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(thumb)
    r = post_images(predictor, [thumb])
    assert r.status_code == 422
    assert (
        "file 'thumb.png' (#1 of 1) is not a usable image: the image is 2×2 px"
        in (r.json()["detail"])
    )


def test_an_unexpected_failure_is_a_json_500_naming_its_type(settings, served_runs, demo_data,
                                                               monkeypatch):  # fmt: skip
    import predictor.app

    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)

    def broken(served, uploads):
        raise RuntimeError("a bug")

    monkeypatch.setattr(predictor.app, "predict", broken)
    with LiveServer(create_app(settings)) as s:
        wait_ready(s.url)
        r = post_images(s.url, sorted((demo_data / "test").rglob("*.png"))[:1])
        assert r.status_code == 500
        assert r.json()["detail"].startswith("internal error (RuntimeError, error id ")
        assert r.headers["X-Model-Version"] == "1" and r.headers["X-Request-ID"]  # traced too
        assert requests.get(f"{s.url}/health", timeout=10).status_code == 200


def test_at_most_predict_concurrency_requests_decode_at_once(settings, served_runs, demo_data,
                                                            monkeypatch):  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    import predictor.app

    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    real, running, most = predictor.app.predict, [0], [0]
    guard = threading.Lock()

    def counted(served, uploads):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)  # long enough for the other requests to arrive meanwhile
        try:
            return real(served, uploads)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(predictor.app, "predict", counted)
    image = sorted((demo_data / "test").rglob("*.png"))[:1]
    for limit in (1, 3):
        most[0] = 0
        limited = settings.model_copy(update={"predict_concurrency": limit})
        with LiveServer(create_app(limited)) as s:
            wait_ready(s.url)
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(lambda _: post_images(s.url, image).status_code, range(6)))
        assert statuses == [200] * 6
        assert most[0] == limit, (limit, most[0])


def test_health_and_ready_answer_while_predictions_fill_every_worker_thread(
    settings, served_runs, demo_data, monkeypatch
):
    from concurrent.futures import ThreadPoolExecutor

    import predictor.app

    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    released, real = threading.Event(), predictor.app.predict

    def stuck(served, uploads):
        released.wait(60)
        return real(served, uploads)

    monkeypatch.setattr(predictor.app, "predict", stuck)
    image = sorted((demo_data / "test").rglob("*.png"))[:1]
    limited = settings.model_copy(update={"predict_concurrency": 1})
    with LiveServer(create_app(limited)) as s:
        wait_ready(s.url)
        before = threading.active_count()
        with ThreadPoolExecutor(45) as pool:  # more than the server's 40 worker threads
            posts = [pool.submit(post_images, s.url, image) for _ in range(45)]
            try:
                # Until the 45 client threads and at least 30 of the server's worker threads
                # run (the others may still be parsing their upload).
                deadline = time.monotonic() + 60
                while threading.active_count() < before + 45 + 30:
                    assert time.monotonic() < deadline, threading.active_count() - before
                    time.sleep(0.01)
                health = requests.get(f"{s.url}/health", timeout=5)
                ready = get_ready(s.url)
            finally:
                released.set()
            statuses = [p.result().status_code for p in posts]
    assert health.status_code == 200 and ready.status_code == 200
    assert statuses == [200] * 45


def test_predict_needs_the_token(predictor, settings, served_runs, demo_data):
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    assert post_images(predictor, [image], token=None).status_code == 401
    assert get_ready(predictor, token=None).status_code == 401
    assert post_images(predictor, [image], token=TOKEN + "x").status_code == 401


def test_follows_the_alias_without_failing_a_request(predictor, settings, served_runs,
                                                     demo_data):  # fmt: skip
    choose_run(served_runs[0], "first", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    image = sorted((demo_data / "test").rglob("*.png"))[0]
    with ClientLoop(predictor, image) as loop:
        time.sleep(0.5)
        choose_run(served_runs[1], "second", settings, allow_unevaluated=True)
        wait_ready(predictor, "2", timeout=30)
        time.sleep(0.5)
    assert loop.statuses and set(loop.statuses) == {200}
    assert loop.versions[0] == "1" and loop.versions[-1] == "2"
    assert loop.versions == sorted(loop.versions)  # never back to the old version


def test_an_image_declaring_too_many_pixels_is_422(predictor, settings, served_runs, tmp_path):
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(20000, 20000))  # 400 megapixels in 57 bytes
    r = post_images(predictor, [bomb])
    assert r.status_code == 422
    assert "file 'bomb.png' (#1 of 1) is not a usable image" in r.json()["detail"]
    assert "more than the 40 megapixels" in r.json()["detail"]


def test_a_request_over_the_body_limit_is_413_naming_the_setting(settings, demo_data):
    small = settings.model_copy(update={"predict_max_body_bytes": 10_000})
    images = sorted((demo_data / "test").rglob("*.png"))[:20]
    with LiveServer(create_app(small)) as server:
        r = post_images(server.url, images)
    assert r.status_code == 413
    assert "PREDICT_MAX_BODY_BYTES" in r.json()["detail"]


def test_loads_from_the_configured_server_whatever_mlflow_s_global_uri(settings, served_runs,
                                                                       tmp_path):  # fmt: skip
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/elsewhere.db")  # not the settings' server
    try:
        holder = ModelHolder(settings)
        assert holder.refresh(), holder.problem
    finally:
        mlflow.set_tracking_uri(before)
    assert holder.serving().version == "1"


def test_a_model_trained_under_another_image_decoding_is_served_saying_so(
    predictor, settings, demo_data
):
    uri, older = settings.mlflow_tracking_uri, DECODING_VERSION - 1
    run_id = log_untrained_run(uri, demo_data, seed=5, decoding_version=older)
    choose_run(run_id, "logged by older code", settings, allow_unevaluated=True)
    note = wait_ready(predictor, "1")["decoding_note"]
    assert (
        f"decoded by version {older} " in note
        and f"were decoded by version {DECODING_VERSION}," in note
    )
    r = post_images(predictor, sorted((demo_data / "test").rglob("*.png"))[:1])
    assert r.status_code == 200 and r.json()["decoding_note"] == note
