"""The memory check before training: the estimate, the refusal, the warning, the free memory."""

from pathlib import Path

import pytest
import torch

from common import InvalidInput
from runs import build_model
from tests.trainer.conftest import grey_folder
from trainer import train
from trainer.memory import GIB, activation_bytes, available_bytes, check_batch_fits


@pytest.mark.parametrize("arch", ["smallcnn", "resnet18"])
def test_the_estimate_probed_small_matches_a_full_size_pass(arch):
    model = build_model(arch, 1, 2)
    direct = activation_bytes(model, 1, (128, 96))  # at the probe size: no scaling
    scaled = activation_bytes(model, 1, (256, 192))  # probed at 128×96, times 4
    assert scaled == 4 * direct
    # and the probe agrees with a real pass at the larger size within rounding of odd maps
    outputs = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel() * 4))
        for m in model.modules()
        if not list(m.children())
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 256, 192))
    for hook in hooks:
        hook.remove()
    assert scaled == pytest.approx(sum(outputs), rel=0.03)


def test_a_batch_far_above_the_free_memory_is_refused_naming_a_batch_that_fits():
    with pytest.raises(InvalidInput, match=r"64 images of 512×512 px needs about 64\.0 GiB") as e:
        check_batch_fits(GIB, 64, 20 * GIB, (512, 512), "smallcnn")
    assert "--batch-size 14 or less" in str(e.value)


def test_a_batch_close_to_the_free_memory_warns(capsys):
    message = check_batch_fits(GIB, 16, 20 * GIB, (512, 512), "smallcnn")
    assert message is not None and "may run out of memory" in message
    assert "warning: a training batch of 16 images" in capsys.readouterr().err


@pytest.mark.parametrize("available", [100 * GIB, None])
def test_a_batch_well_within_or_unknown_memory_passes(available, capsys):
    assert check_batch_fits(GIB, 16, available, (512, 512), "smallcnn") is None
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="reads Linux's /proc/meminfo")
def test_the_free_memory_is_positive_and_at_most_the_machine_s():
    total = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    assert 0 < available_bytes(torch.device("cpu")) <= total


@pytest.mark.slow
def test_training_refuses_images_too_large_for_the_memory(trainer_argv, tmp_path):
    # SmallCNN keeps about 3 GiB per 2048² image: a batch of 16 needs about 48 GiB
    free = available_bytes(torch.device("cpu"))
    if free is None or free > 30 * GIB:
        pytest.skip("needs a machine with less than 30 GiB free to exceed it")
    data = grey_folder(tmp_path / "data", (64, 64))
    argv = trainer_argv("--image-size", "2048", "--epochs", "1", data=data)
    with pytest.raises(InvalidInput, match=r"16 images of 2048×2048 px .* --batch-size \d+"):
        train(argv)
