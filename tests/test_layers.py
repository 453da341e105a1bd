"""The package's shape: no import cycles, and imports only go down the layer order.

Every `import` counts, function-level ones included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "harness"
METHOD_SPEC = "<a method package's __init__ or config>"

# low to high; a module may import its own layer and the layers below it, never above. A module belongs to
# the layer of the longest name that covers it, so a package (harness.run) can hold a lower module
# (harness.run.rundir) than its own layer.
LAYERS: list[tuple[str, set[str]]] = [
    ("leaves", {"harness.core", "harness.data.schema", "harness.run.claims", "harness.config.presets",
                "harness.config.fields", "harness.methods.spec"}),
    ("config sections", {"harness.config.sections", "harness.config.types", "harness.config.secrets"}),
    # what the registry reads of each method: its spec and its settings' dataclass, never its code
    ("method specs", {"harness.methods.registry", "harness.methods.hf.settings", METHOD_SPEC}),
    ("config", {"harness.config"}),
    ("data and maths", {"harness.data", "harness.track.figures", "harness.posthoc.decision.fastdecode",
                        "harness.posthoc.calibrate"}),
    ("run directory", {"harness.run.manifest", "harness.run.rundir", "harness.run.layout", "harness.run.ensemble_files",
                       "harness.run.refit_files",
                       "harness.run.verify"}),
    ("decision layer", {"harness.posthoc.decision"}),
    ("methods", {"harness.methods"}),
    ("mirrors", {"harness.track"}),
    ("fold loop", {"harness.run"}),
    ("after the folds", {"harness.posthoc", "harness.search"}),
    ("exports", {"harness.export"}),
    ("commands", {"harness.cli"}),
    ("package API", {"harness"}),  # the root package alone (`harness.load`): it covers no other module
    ("test fixtures", {"harness.testing"}),  # the top: nothing in the package imports a fixture
]
# third-party imports a module must never make (anywhere in it)
FORBIDDEN = {
    **{f"harness.config.{m}": {"torch", "transformers", "numpy", "wandb", "optuna"}  # imported by every command
       for m in ("experiment", "sections", "types", "loader", "secrets", "fields")},
    # the registry imports every method's spec and settings: never a model library (every method folder found
    # on disk, so a new built-in method is covered without editing this list)
    **{f"harness.methods.{m}": {"torch", "transformers", "peft", "trl", "sklearn", "numpy", "wandb"}
       for m in ["registry", "spec"] + [f"{d.name}{sub}" for d in sorted((PKG / "methods").iterdir())
                                        if (d / "__init__.py").exists() and d.name != "hf"
                                        for sub in ("", ".config") if (d / f"{sub[1:] or '__init__'}.py").exists()]},
    "harness.posthoc.calibrate": {"torch", "transformers", "wandb", "optuna"},  # arrays in, numbers out
    "harness.run.cv": {"torch", "transformers", "peft", "trl", "sklearn", "wandb"},  # method-agnostic fold loop
    **{f"harness.posthoc.decision{m}": {"torch", "transformers", "peft", "wandb"}  # trains nothing
       for m in ["", *(f".{p.stem}" for p in sorted((PKG / "posthoc" / "decision").glob("*.py")) if p.stem != "__init__")]},
    "harness.data.load": {"torch", "transformers"},
}


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(("harness",) + p.relative_to(PKG).with_suffix("").parts).removesuffix(".__init__")
        out[name] = p
    return out


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for t in imports(p):
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t not in (m, "harness"):
                edges[m].add(t)
    return edges


def is_method_spec(module: str) -> bool:
    """harness.methods.<name> (its __init__: the MethodSpec) or harness.methods.<name>.config."""
    parts = module.split(".")
    return parts[:2] == ["harness", "methods"] and (len(parts) == 3 or (len(parts) == 4 and parts[3] == "config")) \
        and (PKG / "methods" / parts[2]).is_dir() and parts[2] != "hf"


def layer_of(module: str) -> int:
    if is_method_spec(module):
        return next(i for i, (_, members) in enumerate(LAYERS) if METHOD_SPEC in members)
    covering = [(len(m), i) for i, (_, members) in enumerate(LAYERS) for m in members
                if module == m or (module.startswith(m + ".") and m != "harness")]
    assert covering, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return max(covering)[1]


def test_no_import_cycles():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}

    def visit(v: str, path: list[str]) -> None:
        state[v] = 1
        for w in sorted(edges[v]):
            if state.get(w) == 1:
                cycles.append(path[path.index(w):] + [w] if w in path else [v, w])
            elif w not in state:
                visit(w, path + [w])
        state[v] = 2

    for v in sorted(edges):
        if v not in state:
            visit(v, [v])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_follow_the_layer_order():
    edges = graph()
    wrong = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
             for m in sorted(edges) for t in sorted(edges[m]) if layer_of(t) > layer_of(m)]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_the_checks_can_fail(tmp_path):
    """The graph really sees function-level imports (the layer rule is not vacuous)."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from harness.methods.base import Method\n")
    assert "harness.methods.base" in imports(f)
    assert layer_of("harness.data.load") < layer_of("harness.methods.tfidf.method")
    assert layer_of("harness.methods.tfidf.config") < layer_of("harness.config") < layer_of("harness.methods.base")


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_no_forbidden_libraries(module):
    path = modules()[module]
    used = {n.split(".")[0] for n in imports(path)}
    assert not used & FORBIDDEN[module], f"{module} imports {sorted(used & FORBIDDEN[module])}"


def test_config_and_cv_import_no_torch_at_run_time():
    code = ("import sys, harness.config, harness.run.cv, harness.posthoc.decision, harness.methods.registry as r; r.specs(); "
            "print(sorted(m for m in ('torch', 'transformers', 'wandb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_only_rundir_names_the_run_directory_files():
    """Every run-directory file name is a constant of harness.run.layout (RunDir offers them); no other module spells
    one out."""
    from harness.run import rundir

    names = {v for k, v in vars(rundir).items() if k.isupper() and isinstance(v, str) and "." in v}
    assert {"config.yaml", "oof.npz", "calibration.json", "crossfit.npz", "probs.npz"} <= names
    allowed: set[tuple[str, str]] = set()  # (module, name) pairs that may spell one (none today)
    found = []
    for mod, path in modules().items():
        if mod == "harness.run.layout":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names \
                    and (mod, node.value) not in allowed:
                found.append(f"{mod}: {node.value!r} (line {node.lineno})")
    assert not found, "run-directory file names outside harness.run.rundir:\n" + "\n".join(found)


def _config_reads(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """`cfg.<section>` / `config.<section>` / `x.read_config().<section>` reads of one of `names`."""
    def is_config(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in ("cfg", "config") or node.id.endswith("_cfg")
        if isinstance(node, ast.Attribute):
            return node.attr in ("cfg", "config")
        return isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)) and \
            getattr(node.func, "attr", getattr(node.func, "id", "")) in ("read_config", "load_config",
                                                                           "load_run_config")
    return [(n.lineno, ast.unparse(n)) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr in names and is_config(n.value)]


def test_only_methods_read_method_settings():
    """A method's settings (its own section, and the sections the HF family shares: model, lora, quant,
    generative) are read by the method's folder and methods/hf only; the rest of the package hands them over
    (`cfg.settings()`) without reading a key."""
    from harness.methods import registry

    names = set(registry.sections())
    assert {"model", "lora", "quant", "generative", "tfidf", "sft"} <= names
    found = [f"{mod}:{line}: {text}" for mod, path in modules().items() if not mod.startswith("harness.methods.")
             for line, text in _config_reads(ast.parse(path.read_text()), names)]
    assert not found, "method settings read outside the methods:\n" + "\n".join(found)
    assert _config_reads(ast.parse("cfg.lora.r\nrun.read_config().tfidf"), names)  # the check can fail


def test_methods_never_see_the_experiment_config():
    """Methods are built from (settings, TaskInfo): no module under harness/methods names ExperimentConfig except
    base.py, where make_method and TaskInfo.of turn a config into those two."""
    def names(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
            {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}

    found = [mod for mod, path in modules().items() if mod.startswith("harness.methods.")
             and mod != "harness.methods.base" and "ExperimentConfig" in names(path)]
    assert not found, f"modules under harness/methods that see ExperimentConfig: {found}"


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def test_modules_and_functions_stay_small():
    """No module over ~400 lines and no function over ~60 (the argument parser tables aside): a module does one
    job, a function one step of it."""
    long_modules, long_functions = [], []
    for mod, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{mod}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "add_parser" \
                    and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long_functions.append(f"{mod}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)


def test_methods_share_code_through_hf_not_each_other():
    """A method folder imports no other method's folder (shared code lives in methods/hf/, used by composition),
    and no Method subclass extends another method's class."""
    folders = {d.name for d in (PKG / "methods").iterdir() if (d / "__init__.py").exists() and d.name != "hf"}
    found = []
    for mod, path in modules().items():
        parts = mod.split(".")
        if parts[:2] != ["harness", "methods"] or len(parts) < 3 or parts[2] not in folders:
            continue
        for target in imports(path):
            tp = target.split(".")
            if tp[:2] == ["harness", "methods"] and len(tp) > 2 and tp[2] in folders and tp[2] != parts[2]:
                found.append(f"{mod} imports {target}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                found += [f"{mod}.{node.name} extends {b}" for b in bases if b.endswith("Method") and b != "Method"]
    assert not found, "\n".join(found)


def test_tests_ask_for_run_directory_file_names():
    """Tests name run-directory files through harness.run.layout (what RunDir offers), never as bare strings, so a
    renamed file is one edit; messages the user reads (f-strings, `match=` patterns) still spell them out."""
    from harness.run import layout

    names = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str) and "." in v}
    found = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        skip = {id(c) for n in ast.walk(tree) if isinstance(n, (ast.JoinedStr, ast.Expr)) for c in ast.walk(n)}
        found += [f"{path.name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in names and id(n) not in skip]
    assert not found, "run-directory file names spelled in tests:\n" + "\n".join(found)
