"""The command line: output, exit codes and one-line errors.

Two tests start a real process (exit code, no traceback on stderr); the rest call ``main`` in
this process, because every interpreter start imports torch and MLflow through ``common``.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataloader.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dataloader", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_process_synth_writes_the_demo_set(tmp_path):
    result = run_process("synth", "--out", str(tmp_path), "--train-per-class", "2",
                         "--test-per-class", "1", "--size", "24", "--seed", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.rglob("*.png"))) == 9
    assert (tmp_path / "lesions.json").is_file()


def test_process_error_is_one_line_without_traceback(tmp_path):
    result = run_process("stats", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope'} does not exist; expected a folder like "
        f"{tmp_path / 'nope'}/train/<class>/*.png|.jpg|.dcm and {tmp_path / 'nope'}/test/<class>/"
        "... (val/ optional), or a MedMNIST .npz file"
    ]


def test_stats_prints_json_of_the_splits_on_disk(tiny_demo, capsys):
    assert main(["stats", str(tiny_demo), "--image-size", "16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["train"]["total"] == 18 and "val" not in data["counts"]
    assert data["image_size"] == [16, 16] and data["original_sizes"]["max"] == [32, 32]


def test_stats_scale_large_images_down_as_the_trainer_does(tiny_demo, capsys):
    assert main(["stats", str(tiny_demo), "--max-image-size", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["image_size"] == [20, 20]
    assert main(["stats", str(tiny_demo), "--max-image-size", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["image_size"] == [32, 32]


def test_stats_of_an_npz(breastmnist, capsys):
    assert main(["stats", str(breastmnist)]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["val"]["total"] == 78


def test_import_medmnist_keep_val(breastmnist, tmp_path, capsys):
    assert main(["import-medmnist", str(breastmnist), "--out", str(tmp_path), "--keep-val"]) == 0
    assert len(list((tmp_path / "val").rglob("*.png"))) == 78
    assert '"val": 78' in capsys.readouterr().out


def test_stats_of_an_empty_folder(tmp_path, capsys):
    assert "has no train/, val/ or test/ folder" in one_line_error(capsys, "stats", str(tmp_path))


def test_import_of_an_npz_without_keys(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4), dtype=np.uint8))
    line = one_line_error(capsys, "import-medmnist", str(tmp_path / "x.npz"), "--out", "o")
    assert "x.npz lacks train_images" in line and "expected a MedMNIST file" in line


def test_synth_with_bad_size(tmp_path, capsys):
    assert "at least 16" in one_line_error(capsys, "synth", "--out", str(tmp_path), "--size", "4")


def test_synth_below_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    line = one_line_error(capsys, "synth", "--out", str(tmp_path / "file" / "sub"))
    assert "file/sub" in line


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_import_medmnist_strips_spaces_around_class_names(breastmnist, tmp_path):
    names = "malignant, benign"
    assert (
        main(["import-medmnist", str(breastmnist), "--out", str(tmp_path), "--class-names", names])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["benign", "malignant"]
