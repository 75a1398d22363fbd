"""Validation errors in words (``service.wording``): a malformed JSON body, no body, a body that is
no object, a field left out or sent empty are each answered by one line naming what is wrong and
what to send, in the ``msg`` of the usual ``detail`` list (its ``loc`` and ``type`` unchanged)."""

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import LiveServer, free_port
from tests.jobs.conftest import make_settings

JSON = {"Content-Type": "application/json"}
EXAMPLE = '{"run_id": "0123456789abcdef0123456789abcdef"}'
"""The body the evaluator's and the explainer's answers show: their required field's example."""


def send(url: str, body: bytes | str) -> dict:
    """The one error of the 422 answering ``body`` posted to ``url`` as JSON."""
    answer = requests.post(url, data=body, headers=JSON, timeout=30)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    return error


@pytest.fixture(scope="module")
def job_services(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The real evaluator and explainer apps, each on uvicorn, MLflow unreachable (a body is
    checked before MLflow is asked anything): their submission URLs by name."""
    from evaluator.app import create_app as evaluator
    from explainer.app import create_app as explainer

    tmp = tmp_path_factory.mktemp("wording")
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(tmp, mlflow_tracking_uri=unreachable)
    with LiveServer(evaluator(settings)) as e, LiveServer(explainer(settings)) as x:
        yield {"evaluate": f"{e.url}/evaluate", "explain": f"{x.url}/explain"}


@pytest.mark.parametrize("route", ["evaluate", "explain"])
def test_an_empty_data_dir_says_to_send_a_folder_under_data_dir_or_leave_it_out(
    job_services, route
):
    error = send(job_services[route], '{"run_id": "ab12", "data_dir": ""}')
    assert (error["loc"], error["type"]) == (["body", "data_dir"], "too_short")
    assert error["msg"].startswith("data_dir must not be empty: send the dataset folder or .npz "
                                   "under DATA_DIR")  # fmt: skip
    assert error["msg"].endswith(", or leave data_dir out for its default (the run's data_dir)")
    assert "Value should have" not in error["msg"] and "\n" not in error["msg"]


def test_empty_methods_say_what_leaving_them_out_means(job_services):
    error = send(job_services["explain"], '{"run_id": "ab12", "methods": []}')
    assert error["loc"] == ["body", "methods"]
    assert error["msg"] == (
        "methods must not be empty: send the attribution methods, or leave methods out for its "
        "default (all of them)"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"run_id": "ab12"', "Expecting ',' delimiter at line 1, column 18"),
        ('{"run_id": "ab12",\n "data_dir": }', "Expecting value at line 2, column 14"),
        ("{'run_id': 'ab12'}", "Expecting property name enclosed in double quotes at line 1, "
                               "column 2"),
    ],
    ids=["unclosed", "no-value", "single-quotes"],
)  # fmt: skip
def test_malformed_json_says_where_and_shows_a_body_to_send(job_services, body, reason):
    error = send(job_services["evaluate"], body)
    assert error["type"] == "json_invalid" and error["loc"][0] == "body"
    assert error["msg"] == (
        f"the body is not valid JSON: {reason}; send a JSON object such as {EXAMPLE} (its fields "
        "are listed at /docs)"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "the request has no body; send a JSON object such as"),
        ("[1, 2]", "the body is an array, not a JSON object; send a JSON object such as"),
        ('"ab12"', "the body is a string, not a JSON object; send a JSON object such as"),
        ("{}", "the body has no run_id, which is required: MLflow run id of a trained model"),
    ],
    ids=["none", "array", "string", "no-run-id"],
)
def test_a_body_that_is_no_request_shows_one_to_send(job_services, body, says):
    error = send(job_services["explain"], body)
    assert error["msg"].startswith(says) and EXAMPLE in error["msg"], error["msg"]


def test_a_validators_words_name_the_field_without_pydantics_prefix(job_services):
    error = send(job_services["evaluate"], '{"run_id": "ab12", "batch_size": "8"}')
    assert (error["loc"], error["type"]) == (["body", "batch_size"], "value_error")
    assert error["msg"] == "batch_size must be a JSON number, not text"


def test_the_toy_service_shows_a_body_of_its_own_fields(toy_server):
    """A body without examples: each required field with a value of its type."""
    error = send(f"{toy_server}/toy", "{")
    assert error["msg"].endswith('send a JSON object such as {"run_id": "...", "x": 1} (its '
                                 "fields are listed at /docs)")  # fmt: skip


@pytest.mark.parametrize(
    ("route", "field", "value"),
    [("explain", "n_samples", 65), ("explain", "n_samples", 0), ("explain", "seed", -1),
     ("evaluate", "batch_size", 100000)],
)  # fmt: skip
def test_a_number_out_of_range_names_both_bounds_as_the_command_lines_do(
    job_services, route, field, value
):
    from common import InvalidInput
    from explainer import check_request
    from runs import inference

    error = send(job_services[route], f'{{"run_id": "ab12", "{field}": {value}}}')
    assert error["loc"] == ["body", field]
    if route == "explain":  # the explainer's CLI refuses it with check_request's words
        args = {"n_samples": 4, "methods": None, field: value}
        with pytest.raises(InvalidInput) as refused:
            check_request(**args)
        assert error["msg"] == str(refused.value).removesuffix(".")
    else:
        most = inference.MAX_BATCH_SIZE
        assert error["msg"] == f"batch_size must be between 1 and {most}, got {value}"


def test_no_body_asks_for_the_content_type_only_where_it_was_not_sent(job_services):
    sent_json = send(job_services["evaluate"], "")
    assert "Content-Type" not in sent_json["msg"], sent_json["msg"]
    answer = requests.post(job_services["evaluate"], timeout=30)  # no body, no header
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["msg"].endswith("with the header 'Content-Type: application/json'"), error
