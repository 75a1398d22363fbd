"""The synthetic demo dataset: determinism, layout, lesion boxes, class differences, safety."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from dataloader import DataError, load_dataset, synthesize
from dataloader.synth import CLASS_NAMES as DEMO_CLASS_NAMES
from dataloader.synth import image_rng, render_lesion


def file_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_same_seed_gives_the_same_bytes(tmp_path):
    a = synthesize(tmp_path / "a", train_per_class=3, test_per_class=2, size=32, seed=4)
    b = synthesize(tmp_path / "b", train_per_class=3, test_per_class=2, size=32, seed=4)
    assert file_bytes(a) == file_bytes(b)
    assert (a / "lesions.json").read_bytes() == (b / "lesions.json").read_bytes()


def test_other_seed_gives_other_images(tmp_path):
    a = synthesize(tmp_path / "a", train_per_class=2, test_per_class=1, size=32, seed=0)
    b = synthesize(tmp_path / "b", train_per_class=2, test_per_class=1, size=32, seed=1)
    assert file_bytes(a) != file_bytes(b)


def test_layout_and_counts(tiny_demo):
    ds = load_dataset(tiny_demo, val_fraction=0)
    assert ds.class_names == list(DEMO_CLASS_NAMES)
    assert ds.stats["counts"]["train"]["total"] == 18
    assert ds.stats["counts"]["test"]["total"] == 9
    assert ds.train.images.shape[1:] == (32, 32, 3)


def test_lesions_json_boxes_every_image_inside_the_image(tiny_demo):
    boxes = json.loads((tiny_demo / "lesions.json").read_text())
    assert set(boxes) == set(file_bytes(tiny_demo))
    assert "train/melanoma/0001.png" in boxes
    for x0, y0, x1, y1 in boxes.values():
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32


def test_box_is_the_lesion_mask_and_the_lesion_is_darker(tiny_demo):
    boxes = json.loads((tiny_demo / "lesions.json").read_text())
    image, mask = render_lesion(1, 32, image_rng(1, "train", 1, 1))
    ys, xs = np.nonzero(mask)
    assert boxes["train/melanoma/0001.png"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    saved = np.asarray(Image.open(tiny_demo / "train/melanoma/0001.png"))
    np.testing.assert_array_equal(saved, image)
    assert image[mask].mean() < image[~mask].mean()


def test_render_lesion_shapes_and_types():
    image, mask = render_lesion(0, 48, np.random.default_rng(0))
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.dtype == bool and 0 < mask.sum() < 48 * 48


def test_melanoma_is_more_variegated_than_nevus():
    def colour_spread(k):
        spreads = []
        for i in range(40):
            image, mask = render_lesion(k, 64, image_rng(0, "train", k, i))
            inside = binary_erosion(mask, iterations=3)  # without the blurred border
            spreads.append(image[inside].astype(float).std(axis=0).mean())
        return np.median(spreads)

    assert colour_spread(1) > 1.5 * colour_spread(2)


def test_keratosis_is_lighter_than_nevus():
    def lesion_brightness(k):
        values = [render_lesion(k, 64, image_rng(0, "train", k, i)) for i in range(40)]
        return np.median([image[mask].mean() for image, mask in values])

    assert lesion_brightness(0) > lesion_brightness(2) + 20


def test_unknown_class_index_is_an_error():
    with pytest.raises(ValueError, match=r"class_index must be 0\.\.2"):
        render_lesion(3, 32, np.random.default_rng(0))


def test_other_files_in_out_are_kept_and_a_previous_demo_replaced(tmp_path):
    (tmp_path / "README.md").write_text("keep me")
    synthesize(tmp_path, train_per_class=3, test_per_class=1, size=32)
    synthesize(tmp_path, train_per_class=1, test_per_class=1, size=32)
    assert (tmp_path / "README.md").read_text() == "keep me"
    assert len(list((tmp_path / "train" / "nevus").iterdir())) == 1


def test_refuses_to_overwrite_a_real_dataset(image_folder):
    root = image_folder()
    with pytest.raises(DataError, match=r"train already holds images that are not a demo"):
        synthesize(root, train_per_class=1, test_per_class=1, size=32)
    assert len(list((root / "train" / "benign").iterdir())) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"train_per_class": 0}, "at least 1"), ({"size": 8}, "at least 16 pixels")],
)
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        synthesize(tmp_path / "out", **kwargs)
