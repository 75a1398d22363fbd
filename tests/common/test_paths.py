"""The one confinement rule for paths from requests and runs (``common.confine``)."""

import os

import pytest

from common import InvalidInput, check_path_text, confine


def test_relative_path_resolves_under_the_root(tmp_path):
    assert confine("a/b.npz", tmp_path) == tmp_path.resolve() / "a" / "b.npz"


@pytest.mark.parametrize("value", ["../x", "/etc", "a/../../x"])
def test_path_outside_the_root_is_refused_naming_the_root(tmp_path, value):
    with pytest.raises(InvalidInput, match="outside DATA_DIR"):
        confine(value, tmp_path / "root", "data_dir", "DATA_DIR")


@pytest.mark.parametrize("value", ["~", "~daemon", "~nosuchuser/x", "~/data"])
def test_a_home_folder_is_not_expanded_but_refused_saying_what_to_pass(tmp_path, value):
    with pytest.raises(InvalidInput, match="a home folder, which the service does not expand") as c:
        confine(value, tmp_path, "data_dir", "DATA_DIR")
    assert "pass a path relative to DATA_DIR" in str(c.value)
    assert "/usr/sbin" not in str(c.value) and "home directory" not in str(c.value)


@pytest.mark.parametrize("value", ["/proc/self/cwd", "/proc/self/exe", "/proc/self/fd/1"])
def test_a_path_outside_the_root_is_refused_without_saying_where_it_leads(tmp_path, value):
    with pytest.raises(InvalidInput, match="outside DATA_DIR") as caught:
        confine(value, tmp_path, "data_dir", "DATA_DIR")
    assert os.path.realpath(value) not in str(caught.value)


def test_a_link_out_of_the_root_is_refused_without_naming_its_target(tmp_path):
    root, target = tmp_path / "root", tmp_path / "secret-place"
    root.mkdir()
    (root / "link").symlink_to(target)
    with pytest.raises(InvalidInput, match="leads outside it through a link") as caught:
        confine("link", root, "data_dir", "DATA_DIR")
    assert "secret-place" not in str(caught.value)


def test_a_link_the_service_cannot_follow_is_refused_without_the_os_error(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InvalidInput, match="cannot be resolved under DATA_DIR") as caught:
        confine("loop/x", tmp_path, "data_dir", "DATA_DIR")
    assert "Errno" not in str(caught.value)


def test_an_absolute_path_through_a_linked_root_is_inside(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "real")
    found = confine(tmp_path / "data" / "demo", tmp_path / "data", "data_dir", "DATA_DIR")
    assert found == (tmp_path / "real" / "demo").resolve()


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
