import numpy as np
import pytest

from common import InvalidInput
from explainer.embedding import embedding_report, sample_for_embedding, tsne_points
from runs import Preprocessing, schemas


def test_sample_keeps_a_rare_class_on_the_map():
    labels = np.array([0] * 990 + [1] * 10)
    index = sample_for_embedding(labels, n=100, seed=0)
    assert len(index) <= 100 and len(set(index)) == len(index)
    assert (labels[index] == 1).sum() >= 1


def test_small_splits_are_taken_whole():
    labels = np.array([0, 1, 2, 0, 1])
    assert sample_for_embedding(labels, n=300).tolist() == [0, 1, 2, 3, 4]


def test_tsne_needs_a_few_points():
    with pytest.raises(InvalidInput, match="at least"):
        tsne_points(np.zeros((3, 8)))


def test_report_separates_the_classes_of_a_trained_model(trained_model, lesions):
    test = lesions[1]
    images = (test.x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    labels = test.y.numpy()
    pp = Preprocessing(
        image_size=images.shape[1:3],
        channels=3,
        class_names=["nevus", "melanoma", "keratosis"],
        mean=[0.5] * 3,
        std=[0.25] * 3,
    )
    report = embedding_report(trained_model, pp, images, labels, seed=0)
    parsed = schemas.Embedding.model_validate(report)
    assert parsed.n_test == len(labels) and len(parsed.points) == len(labels)
    xy = np.array([[p.x, p.y] for p in parsed.points])
    truth = np.array([pp.class_names.index(p.true_label) for p in parsed.points])
    # Points lie nearer the centre of their own class than the centre of any other class.
    centres = np.stack([xy[truth == c].mean(0) for c in range(3)])
    nearest = np.linalg.norm(xy[:, None] - centres[None], axis=2).argmin(1)
    assert (nearest == truth).mean() > 0.6
