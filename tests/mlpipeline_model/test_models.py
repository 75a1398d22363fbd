"""Every architecture the trainer offers trains, explains and travels as the others do."""

import io

import pytest
import torch

from mlpipeline_model import MODEL_NAMES, build_model


@pytest.fixture(params=MODEL_NAMES)
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, 1, 3, mean=[0.4], std=[0.2]).eval()


def test_every_architecture_gives_one_logit_per_class_at_medmnist_size(model):
    out = model(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_every_architecture_trains_a_step(model):
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.nll_loss(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_every_architectures_grad_cam_layer_sees_the_forward_pass(model):
    seen = []
    hook = model.target_layer.register_forward_hook(lambda m, i, out: seen.append(out.shape))
    try:
        model(torch.rand(1, 1, 28, 28))
    finally:
        hook.remove()
    [shape] = seen
    assert shape[0] == 1 and len(shape) == 4  # a feature map for Grad-CAM to weight


def test_every_architecture_survives_the_pickle_a_logged_model_is(model):
    x = torch.rand(2, 1, 28, 28)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False).eval()
    assert torch.equal(again(x), model(x))
    assert again.embed(x).shape == model.embed(x).shape
