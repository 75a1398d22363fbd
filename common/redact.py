"""Credentials kept out of what the services show: a URI's ``user:password@`` and the values of
query parameters that carry secrets (``?token=``, ``&password=``, a signed URL's ``sig``).

One rule for every message, answer and log line that names a tracking server, a store or a URL
from an error: the services run with credentials in ``MLFLOW_TRACKING_URI`` or ``MONGO_URI``,
their clients must not receive them.
"""

import re

# To the last '@' before the host, as URL parsers split it: a password may hold '@'.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/?#\s'\"]*@", re.IGNORECASE)
_URI = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]*", re.IGNORECASE)
# A parameter whose name holds one of these words, or is one of the short names, has its value
# replaced: tokens, passwords, API keys, signatures of pre-signed URLs (AWS, Azure, GCS).
_SECRET_WORDS = r"token|pass|pwd|secret|key|signature|credential|session"
_NAME = rf"(?:[\w.-]*(?:{_SECRET_WORDS})[\w.-]*|sig|auth|authorization|code)"
_QUERY = re.compile(rf"([?&]{_NAME}=)[^&;#\s'\"]*", re.IGNORECASE)
_SEMICOLON = re.compile(rf"(;{_NAME}=)[^&;#\s'\"]*", re.IGNORECASE)
REDACTED = "***"


def redact_uri(text: str) -> str:
    """``text`` (a URI, or a message that holds URIs) with each ``user:password@`` replaced by
    ``***@`` and the value of each secret-bearing query parameter (``token``, ``password``,
    ``api_key``, ``sig``...) by ``***``; the scheme, host, port and path stay, so that the
    message still says which server it means."""
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    # '?' and '&' parameters anywhere (urllib3 names a URL without its scheme: "url:
    # /k?X-Amz-Signature=..."); ';' ones only inside a URI, so that a user's file name
    # 'scans;key=3' is left as written.
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    return _URI.sub(lambda uri: _SEMICOLON.sub(rf"\1{REDACTED}", uri[0]), text)


def printable(text: str) -> str:
    """``text`` as valid UTF-8 text: the bytes of a file name that is not UTF-8 (held by Python
    as lone surrogates) shown as ``\\xff`` escapes, so that it can be written to a report, a
    JSON answer or a hash; other text unchanged."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte gave
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
