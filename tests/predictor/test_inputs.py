"""What one request may hold (``predictor.inputs``): at most ``MAX_REQUEST_PIXELS`` in all,
counted from the files' headers before any is decoded."""

import io
from functools import cache

import pytest
import requests
from PIL import Image

from common import InvalidInput
from dashboard.choose import choose_run
from predictor import MAX_REQUEST_PIXELS
from predictor.inputs import check_request_pixels
from tests.images import png_declaring
from tests.predictor.conftest import AUTH, wait_ready

SIDE = 6300  # 39.7 megapixels, just under the limit of one image


@cache
def large_png() -> bytes:
    """An all-black PNG of SIDE² pixels: a few tens of kilobytes."""
    buffer = io.BytesIO()
    Image.new("L", (SIDE, SIDE)).save(buffer, "PNG")
    return buffer.getvalue()


def _over_budget() -> list[tuple[str, bytes]]:
    count = MAX_REQUEST_PIXELS // SIDE**2 + 1
    return [(f"big-{i}.png", large_png()) for i in range(count)]


def test_images_declaring_more_pixels_than_a_request_may_hold_are_refused():
    with pytest.raises(InvalidInput, match=r"declare 675 megapixels in all, more than the 640 "):
        check_request_pixels(_over_budget(), MAX_REQUEST_PIXELS)


def test_images_within_the_budget_pass():
    check_request_pixels(_over_budget()[1:], MAX_REQUEST_PIXELS)  # one fewer: 635 megapixels


def test_a_file_whose_header_cannot_be_read_counts_nothing():
    check_request_pixels([("text.png", b"not an image"), ("tiny.png", png_declaring(8, 8))], 64)


def test_the_predictor_answers_422_saying_what_to_send_instead(predictor, settings, served_runs):
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    files = [("files", (name, data, "image/png")) for name, data in _over_budget()]
    answer = requests.post(f"{predictor}/predict", files=files, headers=AUTH, timeout=60)
    assert answer.status_code == 422, answer.text
    assert "send fewer or smaller images per request" in answer.json()["detail"]
