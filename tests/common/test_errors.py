"""User-facing errors (``common.errors``)."""

import pickle

from common import InvalidInput, ServiceUnavailable, TooManyRequests


def test_an_error_quoting_a_uri_with_credentials_does_not_carry_them():
    error = ServiceUnavailable("MLflow failed: API request to http://u:s3cretPW@h:5000/x failed")
    assert str(error) == "MLflow failed: API request to http://***@h:5000/x failed"


def test_a_redacted_error_survives_pickling_between_processes():
    error = pickle.loads(pickle.dumps(TooManyRequests("queue of http://u:pw@h is full", 7)))
    assert (str(error), error.retry_after) == ("queue of http://***@h is full", 7)


def test_an_error_s_message_without_a_uri_is_unchanged():
    assert str(InvalidInput("data_dir 'x' does not exist")) == "data_dir 'x' does not exist"
