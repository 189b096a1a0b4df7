"""lab/ is layered as envtest and kind are: host < kube < workloads < observe < experiments and bench < cli.
A module may import its own layer and the layers below, never one above; no module is over 400
lines and no class over 250. The imports are read from the source (ast), nothing is executed."""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "lab"
# Each top-level part of lab/ and its layer; a higher number may import a lower one.
LAYERS = {"host": 0, "kube": 1, "workloads": 2, "observe": 3, "experiments": 4, "bench": 4, "compose": 4, "cli": 5,
          "__main__": 5, "__init__": 0}
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"lab/{self.module}:{self.line} imports {self.imported}, a higher layer"


def layer_of(dotted: str) -> int:
    """The layer of module `lab.PART...`; KeyError for a part no layer names (add it to LAYERS)."""
    return LAYERS[dotted.split(".")[1] if "." in dotted else "__init__"]


def imported_modules(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, dotted name) of every lab module `tree` imports, at any depth (lazy imports too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "lab"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "lab":
            if node.module == "lab":  # `from lab import compose`: the names are the modules
                found += [(node.lineno, f"lab.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(module: str, source: str) -> list[Violation]:
    """The imports of lab module `module` (dotted, e.g. lab.kube.cluster) that reach a higher layer."""
    own = layer_of(module)
    return [Violation(module.removeprefix("lab.").replace(".", "/") + ".py", line, imported)
            for line, imported in imported_modules(ast.parse(source)) if layer_of(imported) > own]


def oversized(source: str) -> list[str]:
    """What is over the size limits in one module's source."""
    tree = ast.parse(source)
    found = [f"{len(source.splitlines())} lines (at most {MAX_MODULE_LINES})"] \
        if len(source.splitlines()) > MAX_MODULE_LINES else []
    found += [f"class {node.name}: {node.end_lineno - node.lineno + 1} lines (at most {MAX_CLASS_LINES})"
              for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
              and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES]
    return found


def lab_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of lab/."""
    modules = {}
    for path in sorted(LAB.rglob("*.py")):
        parts = path.relative_to(LAB.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_every_part_of_lab_has_a_layer():
    assert lab_modules(), f"no module found under {LAB}"
    unplaced = sorted({name.split(".")[1] for name in lab_modules() if "." in name} - set(LAYERS))
    assert not unplaced, f"parts of lab/ without a layer: {unplaced}"


def test_lab_imports_only_its_own_layer_and_below():
    found = [str(v) for name, path in lab_modules().items() for v in violations(name, path.read_text())]
    assert not found, "\n".join(found)


def test_no_module_or_class_is_too_big():
    found = [f"{path.relative_to(LAB.parent)}: {what}" for path in lab_modules().values()
             for what in oversized(path.read_text())]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("lab.host.procs", "from lab.kube.controlplane import ControlPlane\n", ["lab.kube.controlplane"]),
    ("lab.kube.node.lifecycle", "def later():\n    from lab.workloads import topology\n", ["lab.workloads"]),
    ("lab.workloads.install", "import lab.cli.main\n", ["lab.cli.main"]),
    ("lab.kube.cluster", "from lab import compose\n", ["lab.compose"]),
    ("lab.bench.runner", "from lab.experiments.demo import SCENARIOS\n", []),  # the same layer
    ("lab.cli.up", "from lab.host import binaries\nfrom lab.workloads.topology import running\n", []),
])
def test_the_check_finds_an_import_from_a_higher_layer(module, source, expected):
    assert [v.imported for v in violations(module, source)] == expected


def test_the_size_check_finds_a_long_module_and_a_long_class():
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_CLASS_LINES))
    source = f"class Big:\n{body}\n" + "\n" * (MAX_MODULE_LINES - MAX_CLASS_LINES)
    found = oversized(source)
    assert any(what.startswith(f"class Big: {MAX_CLASS_LINES + 1} lines") for what in found), found
    assert any(what.endswith(f"(at most {MAX_MODULE_LINES})") and "class" not in what for what in found), found
    assert oversized("class Small:\n    pass\n") == []
