"""The rules of ../shared/ARCHITECTURE.md that keep the package's promises, checked on the
source itself: the recommender reads only the feature table, the pretrainer is its own stage,
validating a dataset needs no torch, and nothing a user can point at is unpickled or evaluated."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(tree, module):
    """Every module ``tree`` (the source of ``module``, dotted) imports, relative ones resolved."""
    found = set()
    package = module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def unsafe_calls(tree):
    """``(line, what)`` for each unpickling or evaluating call: ``torch.load`` without
    ``weights_only=True``, ``pickle``/``dill``/``joblib`` loads, ``np.load(allow_pickle=True)``,
    builtin ``eval``/``exec``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name) else getattr(func, "id", None))
        keywords = {k.arg: k.value for k in node.keywords}

        def constant(key, keywords=keywords):
            return isinstance(keywords.get(key), ast.Constant) and keywords[key].value

        if name == "torch.load" and constant("weights_only") is not True:
            found.append((node.lineno, "torch.load without weights_only=True"))
        elif name in {"pickle.load", "pickle.loads", "dill.load", "joblib.load"}:
            found.append((node.lineno, name))
        elif name in {"np.load", "numpy.load"} and constant("allow_pickle") is True:
            found.append((node.lineno, "np.load(allow_pickle=True)"))
        elif name in {"eval", "exec"}:
            found.append((node.lineno, name))
    return found


def sources(*folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield path, module.removesuffix(".__init__"), ast.parse(path.read_text(), str(path))


def violations(folders, forbidden):
    """``path: module`` for each import in ``folders`` of a module under a ``forbidden`` prefix."""
    return [f"{path.relative_to(ROOT)}: {name}" for path, module, tree in sources(*folders)
            for name in sorted(imported_modules(tree, module))
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)]


def test_the_recommender_reads_only_the_feature_table():
    assert violations(["recbole_tpad/model"], ["recbole_tpad.mllm", "recbole_tpad.distill"]) == []


def test_the_pretrainer_is_its_own_stage():
    # no training loop of RecBole's or the plugin's; the collaborative teacher (distill/teacher.py)
    # may read a trained model's checkpoint (quick_start.load_data_and_model)
    assert violations(["recbole_tpad/mllm", "recbole_tpad/distill"],
                      ["recbole.trainer", "recbole.quick_start", "recbole_tpad.trainer",
                       "recbole_tpad.quick_start.run"]) == []


def test_dataset_tools_need_no_torch():
    assert violations(["dataset_tools"], ["torch", "recbole", "recbole_tpad", "numpy.torch"]) == []


def test_nothing_is_unpickled_or_evaluated():
    # the one call left on torch's own default: the test that the plugin keeps that default safe
    allowed = {("tests/test_compat.py", "torch.load without weights_only=True")}
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for path, _, tree in sources("recbole_tpad", "dataset_tools", "tests")
             for line, what in unsafe_calls(tree)
             if path.name != "test_layout.py" and (str(path.relative_to(ROOT)), what) not in allowed]
    found += [f"{path.name}:{line}: {what}" for path in sorted(ROOT.glob("run_*.py"))
              for line, what in unsafe_calls(ast.parse(path.read_text()))]
    assert found == []


@pytest.mark.parametrize("source, expected", [
    ("import torch\ntorch.load(p)", ["torch.load without weights_only=True"]),
    ("import torch\ntorch.load(p, weights_only=False)", ["torch.load without weights_only=True"]),
    ("import torch\ntorch.load(p, weights_only=True)", []),
    ("import pickle\npickle.load(f)", ["pickle.load"]),
    ("import numpy as np\nnp.load(p, allow_pickle=True)", ["np.load(allow_pickle=True)"]),
    ("import numpy as np\nnp.load(p, allow_pickle=False)", []),
    ("eval(text)", ["eval"]),
    ("model.eval()", []),
])
def test_the_checker_finds_what_it_looks_for(source, expected):
    assert [what for _, what in unsafe_calls(ast.parse(source))] == expected


def test_the_import_checker_resolves_relative_imports():
    tree = ast.parse("from ..distill import runs\nfrom . import layers\nimport torch.nn")
    assert {"recbole_tpad.distill.runs", "recbole_tpad.model.layers",
            "torch.nn"} <= imported_modules(tree, "recbole_tpad.model.tpad")
