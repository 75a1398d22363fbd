"""The quality benchmark reuses a kept result only for the same training settings."""

from benchmarks.bench_quality import settings_id
from trainer import get_args_parser


def test_settings_id_follows_training_options_not_runtime_ones():
    assert settings_id([]) == settings_id(["--seed", "3", "--threads", "1", "--no-progress"])
    assert settings_id([]) != settings_id(["--ensemble", "1"])
    assert settings_id([]) != settings_id(["--lr", "1e-3"])


def test_settings_id_of_an_explicit_default_is_the_defaults():
    epochs = get_args_parser().get_default("epochs")
    assert settings_id([]) == settings_id(["--epochs", str(epochs)])
    assert settings_id([]) != settings_id(["--epochs", str(epochs + 1)])
