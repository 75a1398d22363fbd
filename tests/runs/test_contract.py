"""What the pipeline's contract decides from what components recorded."""

import pytest

from runs import contract


@pytest.mark.parametrize(
    ("folder", "param", "own"),
    [
        ("/srv/data/synth2", "synth", False),  # relative to DATA_DIR: another folder's name
        ("/srv/data/synth", "synth", None),  # the same name under a DATA_DIR not known here
        ("/srv/data", ".", None),  # DATA_DIR itself: any folder could be it
        ("/srv/data/synth", "/srv/data/synth", True),
        ("/srv/data/synth2", "/srv/data/synth", False),
        ("/srv/data/synth", None, None),  # a run without the param
    ],
)
def test_an_evaluation_without_own_data_is_told_by_the_folder_it_recorded(folder, param, own):
    assert contract.own_data(None, folder, param) is own


def test_what_an_evaluation_recorded_of_its_data_wins():
    assert contract.own_data(True, "/srv/data/synth2", "synth") is True


def test_a_run_trained_on_data_dir_itself_is_told_under_the_readers_data_dir(tmp_path):
    """The demo, Compose and k8s train with --data-dir equal to DATA_DIR: param '.'."""
    root, other = tmp_path / "data", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    assert contract.own_data(None, str(other), ".") is None  # no root known: cannot tell
    assert contract.own_data(None, str(other), ".", data_root=root) is False
    assert contract.own_data(None, str(root.resolve()), ".", data_root=root) is True
    # a folder this process cannot see: not told
    assert contract.own_data(None, str(tmp_path / "gone"), ".", data_root=root) is None
