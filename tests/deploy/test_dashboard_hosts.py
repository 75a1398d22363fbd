"""The dashboard's host names (DNS rebinding; docs/deployment.md, "The dashboard's host names"):
the launcher passes this machine's names only, and Compose, k8s and the image run its command
(test_compose, test_k8s, test_docker keep them equal); `streamlit run` in the repository reads
the same names from .streamlit/config.toml; the overlay patch the docs show adds one."""

import re
import shutil
import textwrap
import tomllib

from launcher.services import DASHBOARD
from tests.deploy.conftest import K8S_DIR, ROOT, main_container
from tests.deploy.test_k8s import kustomize

LOCAL = ["localhost", "127.0.0.1"]


def allowed_hosts(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--server.allowedHosts"]


def test_the_launcher_allows_only_this_machines_names():
    assert allowed_hosts(list(DASHBOARD.command)) == LOCAL


def test_streamlit_run_in_the_repository_reads_the_same_names():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["allowedHosts"] == LOCAL


def test_the_overlay_patch_of_the_docs_adds_a_host_name(kubectl, tmp_path):
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text[text.index("## The dashboard's host names") :]
    patch = re.search(r"```yaml\n(.*?)```", section, re.S)[1]
    folder = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, folder)
    kustomization = folder / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + textwrap.dedent(patch))
    args = main_container(kustomize(kubectl, folder), "dashboard")["args"]
    assert allowed_hosts(args) == [*LOCAL, "dashboard.hospital.example"]
