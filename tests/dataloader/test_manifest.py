"""The group manifest as read (``dataloader.manifest``): what a spreadsheet may write wrong."""

import pytest

from dataloader import DataError, load_dataset


@pytest.mark.parametrize("mark, name", [(";", "semicolons"), ("\t", "tabs")])
def test_a_manifest_separated_otherwise_than_by_commas_says_so(image_folder, mark, name):
    root = image_folder(per_class=2)
    (root / "groups.csv").write_text(f"file{mark}group\ntrain/benign/000.png{mark}p1\n")
    with pytest.raises(DataError, match=f"separated by {name}: save it with commas"):
        load_dataset(root)


def test_a_row_separated_by_a_semicolon_under_a_comma_header_says_so(image_folder):
    root = image_folder(per_class=2)
    (root / "groups.csv").write_text("file,group\ntrain/benign/000.png;p1\n")
    with pytest.raises(DataError, match=r"line 2: .*separated by semicolons"):
        load_dataset(root)
