import json
import subprocess
import sys

import pytest

from common import InvalidInput
from runs import resolve_data_dir
from tests.conftest import ROOT


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


WARM_UP = """
import json, sys
from runs import warm_up
names = ("dataloader", "mlflow.store.tracking.sqlalchemy_store")
before = [n in sys.modules for n in names]
warm_up(sys.argv[1])
print(json.dumps([before, [n in sys.modules for n in names]]))
"""


def test_warm_up_imports_what_the_first_request_would():
    # A fresh process: the suite's own imports would hide a missing one.
    out = subprocess.run(
        [sys.executable, "-c", WARM_UP, "sqlite:///unused.db"], capture_output=True, text=True,
        check=True, cwd=ROOT, timeout=120,
    ).stdout  # fmt: skip
    before, after = json.loads(out.splitlines()[-1])
    assert before == [False, False]  # the data loader, MLflow's SQLAlchemy store: lazily
    assert after == [True, True]
