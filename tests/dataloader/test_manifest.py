"""The group manifest as read (``dataloader.manifest``): what a spreadsheet may write wrong."""

import pytest

from dataloader import DataError, load_dataset


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("path,patient\na.png,1\n", r"header row 'file,group' \(found: path,patient\)"),
        ("file;group\ntrain/benign/000.png;p1\n", "separated by semicolons: save it with commas"),
        ("file\tgroup\ntrain/benign/000.png\tp1\n", "separated by tabs: save it with commas"),
    ],
)
def test_a_manifest_without_the_columns_says_what_it_found(image_folder, text, says):
    root = image_folder(per_class=2)
    (root / "groups.csv").write_text(text)
    with pytest.raises(DataError, match=says):
        load_dataset(root)


def test_a_row_separated_by_a_semicolon_under_a_comma_header_says_so(image_folder):
    root = image_folder(per_class=2)
    (root / "groups.csv").write_text("file,group\ntrain/benign/000.png;p1\n")
    with pytest.raises(DataError, match=r"line 2: .*separated by semicolons"):
        load_dataset(root)
