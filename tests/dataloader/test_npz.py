"""MedMNIST .npz files: the real BreastMNIST file, RGB files, carving val and bad files."""

import zipfile

import numpy as np
import pytest

from dataloader import DataError, load_dataset


def write_npz(path, splits=("train", "val", "test"), n=12, shape=(8, 8, 3), classes=3, **extra):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in splits:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % classes).reshape(-1, 1).astype(np.uint8)
    np.savez(path, **{**arrays, **extra})
    return path


def test_breastmnist_loads_its_three_splits(breastmnist, tmp_path):
    ds = load_dataset(breastmnist, cache_dir=tmp_path)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (546, 78, 156)
    assert ds.train.images.shape == (546, 28, 28, 1)
    assert ds.class_names == ["0", "1"]
    assert ds.val_source == "npz" and ds.format == "npz"
    assert ds.train.files is None


def test_breastmnist_labels_are_flat_int64(breastmnist, tmp_path):
    ds = load_dataset(breastmnist, cache_dir=tmp_path)
    raw = np.load(breastmnist)["test_labels"]
    assert raw.shape == (156, 1)
    assert ds.test.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.test.labels, raw[:, 0])


def test_content_hash_is_the_digest_of_the_file(breastmnist, tmp_path):
    import hashlib

    ds = load_dataset(breastmnist, cache_dir=tmp_path)
    assert ds.content_hash == hashlib.blake2b(breastmnist.read_bytes(), digest_size=16).hexdigest()


def test_a_splits_hash_follows_that_split_alone(breastmnist, tmp_path):
    """An evaluation of the file's test split finds the hash that its training recorded, also
    when the file was written again with other training images."""
    ds = load_dataset(breastmnist, cache_dir=tmp_path / "cache")
    assert (
        ds.split_hashes["test"]
        == load_dataset(breastmnist, splits=["test"], cache_dir=tmp_path / "cache").split_hashes[
            "test"
        ]
    )
    with np.load(breastmnist) as data:
        arrays = dict(data)
    arrays["train_images"] = arrays["train_images"][::-1].copy()  # other training data
    np.savez(tmp_path / "again.npz", **arrays)
    again = load_dataset(tmp_path / "again.npz", cache_dir=tmp_path / "cache")
    assert again.split_hashes["test"] == ds.split_hashes["test"]
    assert again.split_hashes["train"] != ds.split_hashes["train"]
    assert again.content_hash != ds.content_hash  # the file's


def test_breastmnist_resized_to_rgb(breastmnist, tmp_path):
    ds = load_dataset(breastmnist, image_size=32, channels=3, splits=("test",), cache_dir=tmp_path)
    assert ds.test.images.shape == (156, 32, 32, 3)
    assert ds.stats["original_sizes"]["most_common"] == [28, 28]


def test_min_image_size_upsamples_28_px_breastmnist(breastmnist, tmp_path):
    ds = load_dataset(breastmnist, min_image_size=56, splits=("test",), cache_dir=tmp_path)
    assert ds.image_size == (56, 56) and ds.test.images.shape == (156, 56, 56, 1)
    assert ds.stats["original_sizes"]["most_common"] == [28, 28]


def test_class_names_argument_names_the_labels(breastmnist, tmp_path):
    ds = load_dataset(breastmnist, class_names=["malignant", "benign"], cache_dir=tmp_path)
    assert ds.class_names == ["malignant", "benign"]
    assert set(ds.stats["counts"]["train"]) == {"malignant", "benign", "total"}


def test_too_few_class_names_is_an_error(breastmnist, tmp_path):
    with pytest.raises(DataError, match=r"labels 0\.\.1 but only 1 class names"):
        load_dataset(breastmnist, class_names=["one"], cache_dir=tmp_path)


def test_rgb_npz_keeps_three_channels(tmp_path):
    ds = load_dataset(write_npz(tmp_path / "rgb.npz"))
    assert ds.channels == 3 and ds.train.images.shape == (12, 8, 8, 3)


def test_npz_without_val_gets_a_stratified_val(tmp_path):
    path = write_npz(tmp_path / "noval.npz", splits=("train", "test"), n=30)
    ds = load_dataset(path, val_fraction=0.2, seed=1)
    assert len(ds.val) == 6 and len(ds.train) == 24
    assert np.bincount(ds.val.labels).tolist() == [2, 2, 2]
    assert ds.val_source.startswith("carved from train")


def test_a_size_over_4x_its_images_is_refused_as_the_served_model_would_refuse_them(tmp_path):
    path = write_npz(tmp_path / "small.npz")  # 8×8 images
    assert load_dataset(path, image_size=32).image_size == (32, 32)  # 4×: fine
    with pytest.raises(DataError, match=r"8×8 px is more than 4× smaller than the 40×40"):
        load_dataset(path, image_size=40)


def test_missing_keys_are_named(tmp_path):
    path = write_npz(tmp_path / "bad.npz", splits=("train",))
    with pytest.raises(DataError, match=r"bad.npz lacks test_images, test_labels; expected"):
        load_dataset(path)


def test_file_that_is_not_a_zip_is_an_error(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match=r"broken.npz is not a .npz file \(a zip archive"):
        load_dataset(path)


def test_truncated_npz_is_an_error(tmp_path):
    path = write_npz(tmp_path / "cut.npz")
    path.write_bytes(path.read_bytes()[:-400])
    with pytest.raises(DataError, match=r"cut.npz .*a zip archive that is damaged or cut short"):
        load_dataset(path)


def test_multi_label_npz_is_an_error(tmp_path):
    path = tmp_path / "multi.npz"
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    labels = np.zeros((4, 14), dtype=np.uint8)
    np.savez(path, train_images=images, train_labels=labels, test_images=images,
             test_labels=labels)  # fmt: skip
    with pytest.raises(DataError, match="multi-label datasets are not supported"):
        load_dataset(path)


def test_wrong_image_shape_is_an_error(tmp_path):
    path = write_npz(tmp_path / "odd.npz", shape=(8, 8, 5))
    with pytest.raises(DataError, match=r"train_images has shape \(12, 8, 8, 5\)"):
        load_dataset(path)


def test_npz_of_other_arrays_is_an_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(DataError, match=r"found: x"):
        load_dataset(path)
    assert zipfile.is_zipfile(path)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\x80\x04\x95junk", "it is a Python pickle"),
        (b"\x93NUMPY\x01\x00", "it is a single NumPy array (.npy)"),
        (b"<html>404</html>", "it is text (HTML or XML"),
        (b"", "it is empty (0 bytes)"),
    ],
)
def test_npz_that_is_not_a_zip_says_what_it_is(tmp_path, content, what):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"is not a \.npz file") as caught:
        load_dataset(path)
    assert what in str(caught.value)
    assert "allow_pickle" not in str(caught.value)


def test_inspect_reads_shape_and_classes_from_headers_with_uint8_labels(tmp_path):
    from dataloader import inspect_data

    images = np.zeros((6, 28, 28), dtype=np.uint8)
    labels = np.array([[0], [1], [1], [0], [1], [0]], dtype=np.uint8)
    path = tmp_path / "m.npz"
    np.savez(path, test_images=images, test_labels=labels)
    found = inspect_data(path)
    assert (found.channels, found.n_classes, found.sizes) == (1, 2, [(28, 28)])


def test_a_label_no_training_image_has_is_an_error(tmp_path):
    path = write_npz(tmp_path / "gap.npz", classes=3)
    with np.load(path) as f:
        arrays = dict(f)
    for split in ("train", "val", "test"):
        arrays[f"{split}_labels"][arrays[f"{split}_labels"] == 1] = 2  # labels 0 and 2 only
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"no training image has label 1.*renumber"):
        load_dataset(path)


def test_one_huge_label_is_a_short_error_not_a_list_of_every_missing_one(tmp_path):
    path = write_npz(tmp_path / "huge.npz", classes=3)
    with np.load(path) as f:
        arrays = dict(f)
    labels = arrays["train_labels"].astype(np.int64)
    labels[0] = 10**12
    arrays["train_labels"] = labels
    np.savez(path, **arrays)
    with pytest.raises(DataError) as error:
        load_dataset(path)
    message = str(error.value)
    assert "no training image has label 3, 4, 5" in message
    assert f"and {10**12 - 3 - 10} more" in message  # labels 0..10**12, four of them used
    assert len(message) < 500


def write_sizes(path, train=(32, 32), test=(32, 32)):
    """A grey .npz whose train and test images are of the given (height, width)."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        train_images=rng.integers(0, 256, (20, *train), dtype=np.uint8),
        train_labels=np.arange(20) % 2,
        test_images=rng.integers(0, 256, (6, *test), dtype=np.uint8),
        test_labels=np.arange(6) % 2,
    )
    return path


def test_a_split_of_another_size_that_fits_is_resized_and_reports_its_own_size(tmp_path):
    ds = load_dataset(write_sizes(tmp_path / "mixed.npz", train=(28, 28), test=(32, 32)))
    assert ds.image_size == (28, 28) and ds.test.images.shape == (6, 28, 28, 1)
    assert ds.test.original_sizes.tolist() == [[32, 32]] * 6
    assert ds.stats["original_sizes"]["distinct"] == 2


@pytest.mark.parametrize(
    ("test", "why"),
    [((14, 14), r"14×14 px is more than 4× smaller"), ((256, 32), r"256×32 px would be squashed")],
    ids=["thumbnails", "strips"],
)
def test_a_split_that_does_not_fit_the_others_size_is_refused(tmp_path, test, why):
    path = write_sizes(tmp_path / "mixed.npz", train=(64, 64), test=test)
    with pytest.raises(DataError, match=rf"mixed.npz: the test split's .*64×64 .*{why}"):
        load_dataset(path)


def test_refusing_a_split_names_both_sizes_and_a_size_that_fits_every_split(tmp_path):
    path = write_sizes(tmp_path / "mixed.npz", train=(112, 112), test=(14, 14))
    with pytest.raises(DataError) as error:
        load_dataset(path)
    message = str(error.value)
    assert "train_images 112×112, test_images 14×14 px" in message
    assert "resize test_images to 112×112" in message
    assert message.endswith("an --image-size that fits every split, such as 56")
    ds = load_dataset(path, image_size=56)  # the size suggested
    assert ds.test.images.shape == (6, 56, 56, 1)


@pytest.mark.parametrize(("present", "lacking"), [("images", "labels"), ("labels", "images")])
def test_half_a_val_split_is_an_error_naming_the_missing_key(tmp_path, present, lacking):
    with np.load(write_npz(tmp_path / "half.npz")) as data:
        arrays = dict(data)
    del arrays[f"val_{lacking}"]
    np.savez(tmp_path / "half.npz", **arrays)
    with pytest.raises(
        DataError,
        match=rf"half.npz has val_{present} but lacks val_{lacking}; add val_{lacking}, or "
        rf"remove val_{present} so that validation is carved from train",
    ):
        load_dataset(tmp_path / "half.npz")
