"""The package's layout: imports flow down the floors only, without circles, and the import closures of the
workflow's rules (their code digests) are what the code imports."""

import ast
from pathlib import Path

import pytest

from vaepipe import _build

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "vaepipe"

# The floors of README.md's Development section, from the top down. A module may import its own floor or any
# floor below, never one above.
FLOORS = [
    ("stages", lambda m: m.startswith("vaepipe.stages")),
    ("learning and sampling", lambda m: m in {"vaepipe.training", "vaepipe.datasets", "vaepipe.plan",
                                              "vaepipe.sampling", "vaepipe.preliminary", "vaepipe.latent_descent"}),
    ("leaves", lambda m: m.split(".")[1] in {"io", "plots", "representations", "models", "config"}),
    ("algorithms", lambda m: m in {"vaepipe.decorrelation", "vaepipe.reconstruct", "vaepipe.analysis",
                                   "vaepipe.structure", "vaepipe.profiles", "vaepipe.features", "vaepipe.gaussfit",
                                   "vaepipe.minimize"}),
    ("core wrappers", lambda m: m in {"vaepipe.mc", "vaepipe.energy"}),
    ("foundations", lambda m: m in {"vaepipe", "vaepipe._build", "vaepipe._compiled", "vaepipe._validate", "vaepipe.seeds",
                                    "vaepipe.boundary"}),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _floor(module: str) -> int:
    for i, (_, belongs) in enumerate(FLOORS):
        if belongs(module):
            return i
    raise AssertionError(f"{module} sits on no floor: add it to FLOORS here and to README.md's Development section")


def _edges(module: str, path: Path) -> set[str]:
    """The vaepipe modules that a module imports by name, at module level or in a function (the named module
    itself, not the packages around it, which Python also loads but which are not a dependency of the code)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vaepipe")}
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            if not origin.startswith("vaepipe"):
                continue
            for alias in node.names:
                name = f"{origin}.{alias.name}"
                found.add(name if name in MODULES or name == "vaepipe._core" else origin)
    found.discard(module)
    found.discard("vaepipe._core")  # the compiled core, below every floor
    return found


GRAPH = {module: _edges(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_floor_and_imports_only_down():
    upward = []
    for module, imports in GRAPH.items():
        for target in imports:
            if target == "vaepipe" or target not in MODULES:
                continue
            # A package's __init__ may gather its own modules (vaepipe.models, vaepipe.representations).
            if target.startswith(module + "."):
                continue
            if _floor(target) < _floor(module):
                upward.append(f"{module} ({FLOORS[_floor(module)][0]}) imports {target} ({FLOORS[_floor(target)][0]})")
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    state, stack, circles = {}, [], []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if target not in MODULES:
                continue
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, "\n".join(circles)


def test_io_and_plots_import_no_stage_and_not_each_other():
    for module, imports in GRAPH.items():
        if module.startswith(("vaepipe.io", "vaepipe.plots")):
            other = "vaepipe.plots" if module.startswith("vaepipe.io") else "vaepipe.io"
            assert not {t for t in imports if t.startswith((other, "vaepipe.stages"))}, (module, imports)
        if not module.startswith("vaepipe.stages"):
            assert not {t for t in imports if t.startswith("vaepipe.stages")}, (module, imports)


def test_no_module_is_much_over_500_lines():
    long = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    # decorrelation.py is one cohesive algorithm module, as the layout allows
    assert {m: n for m, n in long.items() if n > 560 and m != "vaepipe.decorrelation"} == {}


def test_every_workflow_script_is_glue_around_one_stage():
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        text = script.read_text()
        assert f"run(snakemake, " in text and len(text.splitlines()) <= 16, script
        imports = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)]
        assert [n.module for n in imports] == ["vaepipe.stages"], script


def _closure(script: str) -> set[str]:
    return set(_build.code_files(REPO / "workflow" / "scripts" / f"{script}.py", REPO))


def test_closures_follow_the_code_they_run():
    sample, featurize, train = _closure("sample"), _closure("featurize"), _closure("train_vae")
    # the sampler's job runs the compiled core and the sampling code, and no featurization or learning
    assert {"cpp/core/Sampler.cc", "CMakeLists.txt", "vaepipe/sampling.py", "vaepipe/mc.py"} <= sample
    assert not {"vaepipe/features.py", "vaepipe/training.py", "vaepipe/plots/__init__.py"} & sample
    # featurizing imports no Keras code, no plots, and not the compiled core
    assert "vaepipe/representations/voxel.py" in featurize
    assert not {"vaepipe/models/vae.py", "vaepipe/plots/__init__.py", "vaepipe/mc.py"} & featurize
    assert not any(f.startswith("cpp/") for f in featurize)
    # training draws its figures in the same job, and builds the models
    assert {"vaepipe/plots/__init__.py", "vaepipe/models/vae.py", "vaepipe/training.py"} <= train
    assert "vaepipe/plots/__init__.py" in _closure("density")


def test_a_lazy_io_import_brings_only_its_module(tmp_path):
    (tmp_path / "vaepipe" / "io").mkdir(parents=True)
    for name in ("__init__.py", "_files.py", "samples.py", "figures.py"):
        (tmp_path / "vaepipe" / "io" / name).write_text((PACKAGE / "io" / name).read_text())
    (tmp_path / "vaepipe" / "__init__.py").write_text("")
    (tmp_path / "one.py").write_text("from vaepipe.io.samples import read_samples\n")
    (tmp_path / "whole.py").write_text("from vaepipe import io\n")
    files, compiled = _build.import_closure(tmp_path / "one.py", tmp_path)
    assert files[1:] == ["vaepipe/__init__.py", "vaepipe/io/__init__.py", "vaepipe/io/_files.py",
                         "vaepipe/io/samples.py"] and not compiled
    whole, _ = _build.import_closure(tmp_path / "whole.py", tmp_path)
    assert "vaepipe/io/figures.py" in whole
    (tmp_path / "broken.py").write_text("import vaepipe.nowhere\n")
    with pytest.raises(ValueError, match="vaepipe.nowhere is imported but has no source file"):
        _build.import_closure(tmp_path / "broken.py", tmp_path)


@pytest.mark.parametrize("script", sorted(p.stem for p in (REPO / "workflow" / "scripts").glob("*.py")))
def test_every_module_a_job_loads_is_in_its_closure(script):
    """The static closure against Python itself: the vaepipe modules loaded by importing the script's stage
    module (a fresh interpreter) are all in the script's digest."""
    import subprocess
    import sys

    text = (REPO / "workflow" / "scripts" / f"{script}.py").read_text()
    stage = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)).names
    module = next(f"vaepipe.stages.{a.name}" for a in stage if a.name != "run")
    probe = (f"import sys, importlib; importlib.import_module({module!r}); "
             "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('vaepipe', 'tensorflow', 'keras')))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=REPO).stdout.split()
    # TensorFlow loads only inside the stage functions, after they set its thread pools (configure_threads)
    assert not [m for m in loaded if m.startswith(("tensorflow", "keras"))], module
    closure = set(_build.code_files(REPO / "workflow" / "scripts" / f"{script}.py", REPO))
    files = {m: MODULES[m].relative_to(REPO).as_posix() for m in loaded if m in MODULES}
    # what the one exception (vaepipe.plots for the sampling rules) leaves out, and nothing else
    unfollowed, _ = _build.import_closure(REPO / "workflow" / "scripts" / f"{script}.py", REPO)
    drawn_only = set(unfollowed) - closure if script in _build.NOT_FOLLOWED else set()
    missing = {m: f for m, f in files.items() if f not in closure and f not in drawn_only}
    assert not missing, missing
    # the compiled core loads on first use, through vaepipe._compiled
    assert ("vaepipe._compiled" in loaded) == any(f.startswith("cpp/") for f in closure)
