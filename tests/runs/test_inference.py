import numpy as np
import pytest
import torch

from runs import Preprocessing, build_model, inference


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("smallcnn", 3, 4, mean=[0.5] * 3, std=[0.25] * 3).eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)


PP = Preprocessing(
    image_size=(16, 16), channels=3, class_names=list("abcd"), mean=[0.5] * 3, std=[0.25] * 3
)


def test_probabilities_match_one_forward_pass_whatever_the_batch_size(model, images):
    whole = torch.softmax(model(PP.to_tensor(images)).double(), dim=1)
    for batch_size in (1, 3, 256):
        probs = inference.predict(model, inference.batches(images, PP, batch_size))
        assert probs.dtype == torch.float64
        assert torch.allclose(probs, whole, atol=1e-6)


def test_logits_and_embeddings_of_a_tensor_input(model, images):
    x = PP.to_tensor(images)
    logits = inference.predict(model, inference.batches(x, batch_size=4), output="logits")
    features = inference.predict(model, inference.batches(x, batch_size=4), output="embedding")
    assert torch.allclose(logits, model.head(features), atol=1e-5)
    assert features.shape[0] == len(images) and features.ndim == 2


def test_no_input_gives_an_empty_result(model):
    empty = np.zeros((0, 16, 16, 3), dtype=np.uint8)
    assert inference.predict(model, inference.batches(empty, PP)).numel() == 0


def test_uint8_images_without_preprocessing_are_refused(images):
    with pytest.raises(ValueError, match="Preprocessing"):
        next(inference.batches(images))


def test_predict_leaves_the_model_in_eval_mode_and_without_gradients(model, images):
    model.train()
    probs = inference.predict(model, inference.batches(images, PP))
    assert not model.training and not probs.requires_grad
