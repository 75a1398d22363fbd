import importlib

import pytest

import dataloader
import runs.checks
from common import InvalidInput
from runs import resolve_data_dir, warm_up


def test_relative_data_dir_resolves_under_data_root(demo_data, data_root):
    assert resolve_data_dir("demo", data_root, confine=True) == demo_data.resolve()


def test_dotdot_out_of_data_root_is_refused(data_root, demo_data):
    with pytest.raises(InvalidInput, match="outside DATA_DIR"):
        resolve_data_dir(f"demo/../../{data_root.name}/../", data_root, confine=True)


def test_symlink_out_of_data_root_is_refused(data_root, tmp_path):
    link = data_root / "escape"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        with pytest.raises(InvalidInput, match="outside DATA_DIR"):
            resolve_data_dir("escape", data_root, confine=True)
    finally:
        link.unlink()


@pytest.mark.parametrize(
    ("uri", "store"),
    [
        ("sqlite:///mlflow.db", "sqlalchemy_store"),
        ("postgresql+psycopg2://db/mlflow", "sqlalchemy_store"),
        ("http://mlflow:5000", "rest_store"),
    ],
)
def test_warm_up_imports_the_uris_store_and_the_checks_hold_the_data_loader(
    monkeypatch, uri, store
):
    imported = []
    monkeypatch.setattr(importlib, "import_module", imported.append)
    warm_up(uri)
    assert imported == [f"mlflow.store.tracking.{store}"]
    # The data loader is imported with the checks, not by the first request that needs it.
    assert runs.checks.inspect_data is dataloader.inspect_data
