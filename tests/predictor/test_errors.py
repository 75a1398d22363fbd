"""The predictor's own error answers (``predictor.errors``): a body that is not a multipart form of
``files`` parts, and no model to answer with; each one line saying what to do."""

import math
import threading
import time

import pytest
import requests

from predictor.app import create_app
from tests.conftest import LiveServer
from tests.predictor.conftest import AUTH, TOKEN, alias_a_foreign_model, get_ready

HOW = "send multipart/form-data with one or more parts named 'files'"


@pytest.fixture
def offline(settings, unreachable_uri):
    """A predictor without MLflow: the shape of a body is checked before a model is needed."""
    alone = settings.model_copy(update={"mlflow_tracking_uri": unreachable_uri})
    with LiveServer(create_app(alone)) as server:
        yield server.url


@pytest.fixture
def offline_open(settings, unreachable_uri):
    """As ``offline``, run without ``PIPELINE_API_TOKEN`` (no token to send)."""
    alone = settings.model_copy(
        update={"mlflow_tracking_uri": unreachable_uri, "pipeline_api_token": None}
    )
    with LiveServer(create_app(alone)) as server:
        yield server.url


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(f"{url}/predict", headers={**AUTH, **kwargs.pop("headers", {})},
                         timeout=30, **kwargs)  # fmt: skip


def ready_once(url: str, done, timeout: float = 60) -> requests.Response:
    """The first ``/ready`` answer for which ``done(answer)`` holds."""
    deadline = time.monotonic() + timeout
    while not done(r := get_ready(url)):
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    return r


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n"),
        ("application/dicom", b"\0" * 132 + b"DICM"),
        ("application/json", b'{"files": ["scan.png"]}'),
        ("application/x-www-form-urlencoded", b"files=hello"),
    ],
    ids=["png", "dicom", "json", "urlencoded"],
)
def test_a_body_of_another_content_type_is_415_saying_what_to_send(offline, content_type, body):
    r = post(offline, data=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    detail = r.json()["detail"]
    assert f"this request has Content-Type '{content_type}'" in detail
    assert HOW in detail and "curl" in detail and "-F files=@" in detail


def test_no_body_is_415_saying_what_to_send(offline):
    r = post(offline)
    assert r.status_code == 415, r.text
    assert "this request has no Content-Type" in r.json()["detail"]
    assert HOW in r.json()["detail"]


def test_a_form_without_files_parts_is_422_naming_the_parts_sent(offline):
    r = post(offline, files=[("file", ("scan.png", b"x", "image/png"))])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "has no part named 'files' (it has: 'file')" in detail
    assert HOW in detail


def test_a_files_part_that_is_text_is_422_naming_its_place(offline):
    parts = [("files", ("scan.png", b"x", "image/png")), ("files", (None, "hello"))]
    r = post(offline, files=parts)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("part 'files' #2 of 2 is text, not a file")
    assert "-F files=@scan.png" in detail and "Expected UploadFile" not in detail


def test_an_unparsable_multipart_body_is_422(offline):
    r = post(offline, data=b"garbage", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 422, r.text
    assert "cannot be parsed as multipart/form-data" in r.json()["detail"]
    assert HOW in r.json()["detail"]


def test_the_schema_lists_the_415(offline):
    schema = requests.get(f"{offline}/openapi.json", headers=AUTH, timeout=10).json()
    answer = schema["paths"]["/predict"]["post"]["responses"]["415"]
    assert "multipart/form-data" in answer["description"]


def test_no_model_chosen_is_503_for_a_client_with_retry_after(predictor, settings):
    ready = ready_once(predictor, lambda r: "still looking up" not in r.text)
    for r in (ready, post(predictor, files=[("files", ("a.png", b"x"))])):
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == str(math.ceil(settings.predictor_poll_s))
        detail = r.json()["detail"]
        assert detail.startswith("no model is chosen, so nothing can be predicted; retry in 1 s")
        assert detail.endswith("python -m dashboard.choose RUN_ID --reason TEXT (or the dashboard)")


def test_a_chosen_model_that_cannot_be_served_is_503_saying_so(predictor, settings):
    alias_a_foreign_model(settings)
    r = ready_once(predictor, lambda r: "cannot be served" in r.text or "failed to" in r.text)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert r.json()["detail"].startswith("the chosen model cannot be served, so nothing can be")


def test_a_files_part_without_a_file_is_422_saying_no_file_was_chosen(offline):
    """A browser form whose file field was left empty sends a 'files' part with no file name."""
    r = post(offline, files=[("files", ("", b"", "application/octet-stream"))])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the 'files' part(s) hold no file (an empty file name")
    assert "(it has: 'files')" not in detail and HOW in detail


def test_a_chosen_model_still_loading_is_503_saying_so_not_that_it_cannot_be_served(
    settings, served_runs
):
    from dashboard.choose import choose_run
    from predictor.core import ModelHolder
    from predictor.errors import NoModelLoaded, served_or_503

    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    entered, release = threading.Event(), threading.Event()

    def slow(uri: str, files: str | None):  # a download that takes a while
        entered.set()
        release.wait(60)
        raise OSError("gave up")

    holder = ModelHolder(settings, loader=slow, record=False)
    loading = threading.Thread(target=holder.refresh)
    loading.start()
    try:
        assert entered.wait(60)
        with pytest.raises(NoModelLoaded) as answer:
            served_or_503(holder)
        assert str(answer.value).startswith("the chosen model is still loading, so nothing")
    finally:
        release.set()
        loading.join(60)
    with pytest.raises(NoModelLoaded, match=r"^the chosen model cannot be served"):
        served_or_503(holder)  # the load failed: now it cannot be served


def test_a_method_predict_does_not_serve_is_a_405_naming_post(offline):
    answer = requests.put(f"{offline}/predict", headers=AUTH, timeout=30)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json()["detail"] == "PUT is not served at /predict: use POST"


def test_a_path_without_a_route_is_a_404_pointing_at_the_docs(offline):
    answer = requests.get(f"{offline}/predictions", headers=AUTH, timeout=30)
    assert answer.status_code == 404
    assert (
        answer.json()["detail"]
        == "no route at /predictions: this service's routes are listed at /docs"
    )


BAD_BODIES = {
    "no body": {},
    "no files part": {"files": [("file", ("scan.png", b"x", "image/png"))]},
    "a text part": {"files": [("files", (None, "hello"))]},
    "unparsable": {"data": b"garbage", "headers": {"Content-Type": "multipart/form-data"}},
}


@pytest.mark.parametrize("sent", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_the_hint_of_a_service_without_a_token_shows_no_authorization_header(offline_open, sent):
    r = requests.post(f"{offline_open}/predict", timeout=30, **sent)
    assert r.status_code in (415, 422), r.text
    detail = r.json()["detail"]
    assert "curl -F files=@scan1.png -F files=@scan2.dcm <predictor URL>/predict" in detail
    assert "Authorization" not in detail and "Bearer" not in detail


@pytest.mark.parametrize("sent", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_the_hint_of_a_service_with_a_token_shows_the_header_not_the_token(offline, sent):
    r = post(offline, **sent)
    assert r.status_code in (415, 422), r.text
    detail = r.json()["detail"]
    assert "curl -H 'Authorization: Bearer <token>' -F files=@scan1.png" in detail
    assert TOKEN not in detail
