"""``Ensemble``: the logged form of ``--ensemble K``, consumed like one classifier."""

import pickle

import pytest
import torch

from runs import Ensemble, build_model


def _member(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("smallcnn", 3, 4, mean=[0.5] * 3, std=[0.25] * 3).eval()


@pytest.fixture(scope="module")
def ensemble() -> Ensemble:
    return Ensemble([_member(0), _member(1), _member(2)]).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_probabilities_are_the_mean_of_the_members(ensemble, x):
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x), dim=1) for m in ensemble.members]).mean(0)
        assert torch.allclose(torch.softmax(ensemble(x), dim=1), mean, atol=1e-6)


def test_one_member_is_that_member(x):
    member = _member(3)
    with torch.no_grad():
        alone = torch.softmax(member(x), dim=1)
        assert torch.allclose(torch.softmax(Ensemble([member])(x), dim=1), alone, atol=1e-6)


def test_embedding_puts_the_members_features_side_by_side(ensemble, x):
    with torch.no_grad():
        features = ensemble.embed(x)
        assert features.shape == (5, 3 * 128)
        assert torch.equal(features[:, 128:256], ensemble.members[1].embed(x))


def test_describes_itself_like_a_classifier_and_survives_pickling(ensemble, x):
    assert (ensemble.arch, ensemble.num_classes, ensemble.in_channels) == ("smallcnn", 4, 3)
    assert len(ensemble.target_layers) == 3
    assert ensemble.target_layer is ensemble.members[0].target_layer
    copy = pickle.loads(pickle.dumps(ensemble))
    with torch.no_grad():
        assert torch.equal(copy(x), ensemble(x))


def test_an_empty_ensemble_is_refused():
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
