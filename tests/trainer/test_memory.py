"""The memory check before training: the estimate, the refusal, the warning, the free memory."""

from pathlib import Path

import pytest
import torch

from common import InvalidInput
from runs import build_model
from tests.trainer.conftest import grey_folder
from trainer import train
from trainer.memory import (
    GIB,
    activation_bytes,
    available_bytes,
    cgroup_free_bytes,
    check_batch_fits,
)


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


def cgroup_tree(root: Path, folders: dict[str, tuple[str, int]], limit: str, usage: str) -> None:
    """Folders of a cgroup mount: ``path -> (limit text, usage bytes)``, each with cgroup.procs."""
    for path, (cap, used) in folders.items():
        folder = root / path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cgroup.procs").write_text("")
        (folder / limit).write_text(f"{cap}\n")
        (folder / usage).write_text(f"{used}\n")


def test_a_nested_v1_cgroup_s_own_limit_counts(tmp_path):
    # A batch job in /slurm/job_42 under a host whose root has no limit (cgroup v1, hybrid).
    cgroup_tree(
        tmp_path / "memory",
        {"": ("9223372036854771712", 30 * GIB), "slurm/job_42": (str(4 * GIB), GIB)},
        "memory.limit_in_bytes",
        "memory.usage_in_bytes",
    )
    membership = tmp_path / "self"
    membership.write_text("5:cpuset:/\n4:memory:/slurm/job_42\n0::/\n")
    assert cgroup_free_bytes(tmp_path, membership) == 3 * GIB


def test_a_parent_cgroup_s_tighter_limit_counts(tmp_path):
    cgroup_tree(
        tmp_path,
        {"": ("max", 0), "pod": (str(GIB), GIB // 2), "pod/app": ("max", GIB // 4)},
        "memory.max",
        "memory.current",
    )
    membership = tmp_path / "self"
    membership.write_text("0::/pod/app\n")
    assert cgroup_free_bytes(tmp_path, membership) == GIB // 2


def test_a_container_s_own_mount_counts_when_its_host_path_is_not_mounted(tmp_path):
    # Without a cgroup namespace the container sees its host path, which its mount lacks.
    cgroup_tree(tmp_path, {"": (str(2 * GIB), GIB)}, "memory.max", "memory.current")
    membership = tmp_path / "self"
    membership.write_text("0::/kubepods/burstable/pod1/abc\n")
    assert cgroup_free_bytes(tmp_path, membership) == GIB


def test_no_cgroup_limit_is_no_figure(tmp_path):
    cgroup_tree(tmp_path, {"": ("max", GIB), "a": ("max", GIB)}, "memory.max", "memory.current")
    membership = tmp_path / "self"
    membership.write_text("0::/a\n")
    assert cgroup_free_bytes(tmp_path, membership) is None
    assert cgroup_free_bytes(tmp_path / "absent", membership) is None


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
    data = grey_folder(tmp_path / "data", (512, 512))  # 4× up at most: not skipped as too small
    argv = trainer_argv("--image-size", "2048", "--epochs", "1", data=data)
    with pytest.raises(InvalidInput, match=r"16 images of 2048×2048 px .* --batch-size \d+"):
        train(argv)


def test_images_too_small_for_the_smallcnn_are_refused_naming_the_smallest_side(
    trainer_argv, tmp_path
):
    data = grey_folder(tmp_path / "data", (4, 60))
    with pytest.raises(InvalidInput, match=r"4×60 px are too small for smallcnn.* at least 8 px"):
        train(trainer_argv("--epochs", "1", data=data))
