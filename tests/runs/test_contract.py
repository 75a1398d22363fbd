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
