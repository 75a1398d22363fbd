"""The loader's one error type."""

from common import InvalidInput


class DataError(InvalidInput):
    """Bad input data: the message names the path and says what is expected."""
