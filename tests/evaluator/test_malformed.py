"""Malformed requests a fuzzer found, sent to a real evaluator (uvicorn, real MLflow): each one
is a 4xx with a message, never a 500, and no answer repeats a huge input."""

import json

import pytest
import requests

LONG = "d" * 300


@pytest.mark.parametrize(
    ("data_dir", "message"),
    [
        ("demo\u0000", "NUL byte"),
        (LONG, "name of 300 bytes"),
        ("demo/" + LONG + "/test", "name of 300 bytes"),
        ("demo\udc80", "not valid UTF-8"),
    ],
    ids=["nul", "long-name", "long-inner-name", "lone-surrogate"],
)
def test_data_dir_that_cannot_name_a_file_is_422_with_a_message(service, run_id, data_dir, message):
    body = json.dumps({"run_id": run_id, "data_dir": data_dir})  # ensure_ascii: "\udc80" escaped
    response = requests.post(
        f"{service.url}/evaluate", data=body, headers={"Content-Type": "application/json"},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert message in response.text


@pytest.mark.parametrize(
    "tail",
    [b'"data_dir": "demo\xff\xfe"}', b'"tta": ' + b"[" * 3000 + b"]" * 3000 + b"}",
     b'"batch_size": ' + b"9" * 5000 + b"}"],
    ids=["not-utf8", "nested-3000-deep", "5000-digit-number"],
)  # fmt: skip
def test_body_that_cannot_be_parsed_is_422_naming_the_causes(service, run_id, tail):
    body = b'{"run_id": "' + run_id.encode() + b'", ' + tail
    response = requests.post(
        f"{service.url}/evaluate", data=body, headers={"Content-Type": "application/json"},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "not valid UTF-8, nests arrays or objects too deeply, or holds a number" in detail


@pytest.mark.parametrize(
    "path", ["/jobs/%00", "/jobs/%FF%FE", "/jobs/" + "j" * 5000, "/jobs?run_id=%00",
             "/jobs?run_id=%FF", "/jobs?limit=%00", "/jobs?status=%00"],
)  # fmt: skip
def test_malformed_job_lookups_are_never_a_server_error(service, path):
    response = requests.get(service.url + path, timeout=30)
    assert response.status_code in (200, 404, 422), response.text


def test_body_over_the_limit_is_413_without_echoing_it(service, run_id):
    huge = "x" * 2_000_000
    response = requests.post(
        f"{service.url}/evaluate", json={"run_id": run_id, "data_dir": huge}, timeout=30
    )
    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in response.json()["detail"]
    assert len(response.content) < 1000


def test_422_does_not_echo_a_long_input(service, run_id):
    response = requests.post(
        f"{service.url}/evaluate", json={"run_id": run_id, "data_dir": "y" * 50_000}, timeout=30
    )
    assert response.status_code == 422
    assert len(response.content) < 2000
    assert "characters, cut" in response.text


def _no_constants(name: str):
    raise AssertionError(f"the answer holds {name}, which JSON does not have")


@pytest.mark.parametrize("number", [b"NaN", b"-Infinity", b"1e400"])
def test_a_non_finite_number_is_422_in_valid_json(service, run_id, number):
    body = b'{"run_id": "' + run_id.encode() + b'", "batch_size": ' + number + b"}"
    response = requests.post(
        f"{service.url}/evaluate", data=body, headers={"Content-Type": "application/json"},
        timeout=30,
    )  # fmt: skip
    assert response.status_code == 422, response.text
    [error] = json.loads(response.text, parse_constant=_no_constants)["detail"]
    assert error["loc"] == ["body", "batch_size"]


@pytest.mark.parametrize(
    ("field", "value"), [("batch_size", True), ("batch_size", "64"), ("force", "yes")]
)
def test_a_value_of_another_type_is_422_not_converted(service, run_id, field, value):
    response = requests.post(
        f"{service.url}/evaluate", json={"run_id": run_id, field: value}, timeout=30
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
