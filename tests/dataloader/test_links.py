"""Symbolic links in class folders: a link that cannot be followed is skipped with its reason."""

from dataloader import load_dataset


def test_a_broken_link_is_skipped_and_named(image_folder):
    root = image_folder(per_class=2)
    (root / "train" / "benign" / "gone.png").symlink_to(root / "nowhere.png")
    ds = load_dataset(root, val_fraction=0)
    [entry] = ds.skipped
    assert entry["file"] == "train/benign/gone.png" and "No such file" in entry["reason"]


def test_a_symlink_loop_is_skipped_as_a_loop(image_folder):
    root = image_folder(per_class=2)
    benign = root / "train" / "benign"
    (benign / "loopA.png").symlink_to("loopB.png")
    (benign / "loopB.png").symlink_to("loopA.png")
    (benign / "sub").mkdir()
    (benign / "sub" / "self").symlink_to("self")  # named otherwise, in a subfolder
    ds = load_dataset(root, val_fraction=0)
    reasons = {s["file"]: s["reason"] for s in ds.skipped}
    assert set(reasons) == {f"train/benign/{n}" for n in ("loopA.png", "loopB.png", "sub/self")}
    assert all(r.startswith("a symlink loop") for r in reasons.values())
    assert len(ds.train) == 4
