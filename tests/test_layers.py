"""The package structure holds: layers import downwards only, through ``__init__.py``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each package and the first-party packages it may import (tests and benchmarks may import all).
ALLOWED = {
    # The code logged with every model: loaded without this repository, so it imports none of it.
    "mlpipeline_model": set(),
    "common": set(),
    "dataloader": {"common", "mlpipeline_model"},
    "augmenter": {"common"},
    "runs": {"common", "dataloader", "mlpipeline_model"},
    # The app shell every FastAPI service is built on: the token, docs, error answers, /metrics.
    "service": {"common"},
    "jobs": {"common", "runs", "service"},
    "trainer": {"common", "dataloader", "augmenter", "runs"},
    "evaluator": {"common", "dataloader", "runs", "jobs", "service"},
    "explainer": {"common", "dataloader", "runs", "jobs", "service"},
    "predictor": {"common", "dataloader", "runs", "service"},
    # It reads artifacts and calls the services over HTTP: it imports none of their code.
    "dashboard": {"common", "runs", "jobs", "launcher"},
    # The list of service commands: the dashboard names them in "start it with ..." messages.
    "launcher": {"common", "dataloader"},
}


def _imports(package: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) of every first-party import in ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in ALLOWED:
                    found.append((str(path.relative_to(ROOT)), node.lineno, module))
    return found


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = [
        f"{file}:{line} imports {module}"
        for file, line, module in _imports(package)
        if module.split(".")[0] not in ALLOWED[package] | {package}
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_other_packages_are_imported_through_their_init(package):
    deep = [
        f"{file}:{line} imports {module}"
        for file, line, module in _imports(package)
        if module.split(".")[0] != package and "." in module
    ]
    assert not deep, "\n".join(deep)


def test_the_allowed_imports_have_no_cycle():
    seen: dict[str, int] = {}

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, " -> ".join((*stack, name))
        if seen.get(name):
            return
        for dep in ALLOWED[name]:
            visit(dep, (*stack, name))
        seen[name] = 1

    for name in ALLOWED:
        visit(name, ())


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_no_module_imports_torchvision_when_it_is_imported(package):
    """torchvision imports torch._dynamo (~1.5 s of CPU), which a service, the dashboard or a
    command never needs for the pipeline's own models: it is imported where it is used."""
    eager = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.parse(path.read_text(encoding="utf-8")).body  # the module's own lines
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            name.split(".")[0] == "torchvision"
            for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                         [alias.name for alias in node.names])
        )
    ]  # fmt: skip
    assert not eager, "\n".join(eager)
