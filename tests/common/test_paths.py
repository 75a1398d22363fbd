"""The one confinement rule for paths from requests and runs (``common.confine``)."""

import pytest

from common import InvalidInput, check_path_text, confine


def test_relative_path_resolves_under_the_root(tmp_path):
    assert confine("a/b.npz", tmp_path) == tmp_path.resolve() / "a" / "b.npz"


@pytest.mark.parametrize("value", ["../x", "/etc", "a/../../x", "~"])
def test_path_outside_the_root_is_refused_naming_the_root(tmp_path, value):
    with pytest.raises(InvalidInput, match="outside DATA_DIR"):
        confine(value, tmp_path / "root", "data_dir", "DATA_DIR")


def test_symlink_inside_the_root_pointing_outside_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="outside"):
        confine("link/secret", root)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("demo\x00", "NUL byte"),
        ("d" * 300, "name of 300 bytes"),
        ("a/" * 600, "more than the 1024 allowed"),
        ("demo\udc80", "not valid UTF-8"),
        (b"demo\xff", "not valid UTF-8"),
    ],
)
def test_text_that_cannot_name_a_file_is_refused(value, message):
    with pytest.raises(InvalidInput, match=message):
        check_path_text(value, "data_dir")


def test_message_does_not_echo_a_long_value():
    with pytest.raises(InvalidInput) as caught:
        check_path_text("x" * 5000)
    assert len(str(caught.value)) < 300
