"""Credentials in URIs never reach a message or an answer (``common.redact_uri``)."""

import pytest

from common import redact_uri


def test_a_uri_s_user_and_password_are_replaced_keeping_its_server():
    shown = redact_uri("http://audituser:s3cretPW@127.0.0.1:15000")
    assert shown == "http://***@127.0.0.1:15000"


@pytest.mark.parametrize(
    "query", ["token=s3cret", "access_token=s3cret", "password=s3cret", "X-Amz-Signature=s3cret"]
)
def test_a_secret_query_parameter_s_value_is_replaced(query):
    shown = redact_uri(f"https://mlflow.example/api?experiment=7&{query}&page=2")
    assert "s3cret" not in shown and "experiment=7" in shown and "page=2" in shown


def test_a_uri_inside_a_message_is_redacted():
    message = "API request to http://u:s3cretPW@h:5000/api/2.0/mlflow/runs/get failed (refused)"
    assert redact_uri(message) == (
        "API request to http://***@h:5000/api/2.0/mlflow/runs/get failed (refused)"
    )


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:5000", "sqlite:///mlflow.db", "file:///data/a@b", "mongodb://db/x"]
)
def test_a_uri_without_credentials_is_left_as_it_is(uri):
    assert redact_uri(uri) == uri


def test_a_password_holding_an_at_sign_is_replaced_whole():
    assert redact_uri("http://u:p@ss@host:5000/x") == "http://***@host:5000/x"


def test_a_user_s_text_outside_a_uri_keeps_what_looks_like_a_parameter():
    message = "data_dir 'scans;key=3' does not exist under http://h/?token=s3cret"
    assert redact_uri(message) == "data_dir 'scans;key=3' does not exist under http://h/?token=***"


def test_a_secret_parameter_of_a_url_named_without_its_scheme_is_replaced():
    message = "Max retries exceeded with url: /k?X-Amz-Signature=abc&X-Amz-Credential=AKIA1"
    assert redact_uri(message) == (
        "Max retries exceeded with url: /k?X-Amz-Signature=***&X-Amz-Credential=***"
    )
