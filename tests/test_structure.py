"""The package's shape: no import cycle (lazy imports included), short modules and functions,
every public name of `sdoc_model` importable, one home per fact."""

import ast
from pathlib import Path

import pytest

import sdoc_model

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sdoc_model"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that `name` imports anywhere in its body, functions included
    (a package's own __init__, which Python runs first, is not counted as an import)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            # `from package import submodule` imports the submodule; parents are not counted.
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= submodules or {base}
    return {module for module in found if module in MODULES and module != name}


def import_graph() -> dict[str, set[str]]:
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    graph["sdoc_model"] |= set(sdoc_model._EXPORTS.values())  # its lazy public names
    return graph


def test_no_import_cycle():
    graph, state, stack = import_graph(), {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_method_does_not_import_the_harness():
    graph = import_graph()
    allowed = ("sdoc_model.method", "sdoc_model.utils")
    for module, targets in graph.items():
        if module.startswith("sdoc_model.method"):
            assert all(t.startswith(allowed) for t in targets), (module, targets)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_are_short(name):
    source = MODULES[name].read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, name
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name}: {length} lines"


def test_every_public_name_imports():
    for name in sdoc_model.__all__:
        assert getattr(sdoc_model, name) is not None, name
    with pytest.raises(AttributeError):
        sdoc_model.no_such_name  # noqa: B018


def test_method_names_come_from_one_module_each():
    """Variant names live in method/variants.py, benchmark and subject names in
    data/benchmarks.py, task names in eval/tasks.py, model shapes in base_models/shapes.py: no
    other package module writes them as literals."""
    from sdoc_model.base_models.shapes import MODEL_SHAPES
    from sdoc_model.data.benchmarks import BENCHMARK_LABELS, CMMLU_MED_SUBJECTS
    from sdoc_model.data.sources import DATASETS
    from sdoc_model.eval.tasks import TASKS
    from sdoc_model.method.variants import VARIANTS

    homes = {
        "sdoc_model.method.variants": set(VARIANTS) - {"base", "lora"},
        "sdoc_model.data.benchmarks": set(CMMLU_MED_SUBJECTS) | set(BENCHMARK_LABELS),
        "sdoc_model.eval.tasks": set(TASKS) - set(BENCHMARK_LABELS),
        "sdoc_model.base_models.shapes": set(MODEL_SHAPES) - {"tiny"},
    }
    # "base", "lora" and "tiny" are also ordinary words (kinds, model kinds), so not checked.
    # Facts of their own that share a name: the dataset registry's names (one is "cmmlu_med"),
    # the task registry's task and dataset names ("cmb" scores CMB-Exam's test set) and the
    # transformers model_type "sparsedoctor".
    own_facts = {
        "sdoc_model.data.sources": set(DATASETS),
        "sdoc_model.eval.tasks": set(TASKS) | set(DATASETS),
        "sdoc_model.method.hf_config": {"sparsedoctor"},
    }
    for name, path in MODULES.items():
        literals = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        } - own_facts.get(name, set())
        for home, facts in homes.items():
            if name != home:
                assert not literals & facts, f"{name} writes {sorted(literals & facts)}"


UNPICKLING = {"pickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}


SOURCES = [*MODULES.values(), *REPO.glob("tasks/*.py"), *REPO.glob("workflow/scripts/*.py")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_nothing_is_unpickled(path):
    """No pickle-based loader anywhere: torch.load, numpy with allow_pickle, the pickle family."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            assert not {name.split(".")[0] for name in names} & UNPICKLING, (path, node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "load":
            assert ast.unparse(node.value) not in ("torch", "np", "numpy"), (path, node.lineno)
        if isinstance(node, ast.keyword) and node.arg in ("weights_only", "allow_pickle"):
            pytest.fail(f"{path}:{node.lineno}: {node.arg}=")
