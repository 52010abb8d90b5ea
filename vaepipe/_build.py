"""Load the compiled core, and refuse code that is not the workflow checkout's: a missing or stale extension, or
an installed package that differs from the checkout.

Snakemake reruns a stage when its sources change (their digest is a rule parameter, computed from the workflow's
checkout), but it can neither rebuild the extension nor reinstall the package. Without these checks an edited
sampler would silently rerun with the old binary, and a non-editable install would rerun every edited stage with
the old installed code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The workflow's base directory. The Snakefile exports it (:func:`use_workflow_checkout`); the jobs inherit it.
WORKFLOW_DIR_ENV = "VAEPIPE_WORKFLOW_DIR"
#: Set (to anything but "" or "0") to run an extension or installed package that differs from the checkout.
ALLOW_STALE_ENV = "VAEPIPE_ALLOW_STALE_BUILD"
# Never sources: the extension's own digest covers the compiled files, and caches change on every import.
_SKIP_SUFFIXES = {".pyc", ".pyo", ".so", ".o", ".a"}
_MAX_LISTED = 12


def rebuild_hint(root: Path) -> str:
    """How to (re)install the checkout at root. Build isolation lets pip fetch scikit-build-core, pybind11 and
    CMake, so this works on a fresh machine; --no-build-isolation is faster where they are installed."""
    return (f"python -m pip install -e {root}  (add --no-build-isolation where scikit-build-core and pybind11 are "
            f"installed, e.g. by the [test] extra or environment.yml, to rebuild without fetching them)")


def _allow_stale() -> bool:
    return os.environ.get(ALLOW_STALE_ENV, "") not in ("", "0")


def checkout_root() -> Path:
    """The source checkout this process must run the code of: the workflow's (set by the Snakefile in Snakemake's
    process and inherited by every job), else the one holding this file (an editable install; for a non-editable
    one, site-packages, which holds no C++ sources)."""
    workflow_dir = os.environ.get(WORKFLOW_DIR_ENV)
    return Path(workflow_dir) if workflow_dir else REPO_ROOT


def files_digest(root: Path, names) -> str:
    """SHA-256 over files given by their paths relative to root: one line "name\nsha256(content)\n" each, in
    sorted order (the format CMakeLists.txt computes too). Changes when a file is added, removed, renamed or
    edited; also used by the workflow's code digests."""
    text = "".join(f"{name}\n{hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()}\n"
                   for name in sorted(names))
    return hashlib.sha256(text.encode()).hexdigest()


def source_files(directory: Path) -> list[str]:
    """Sorted POSIX paths, relative to directory, of its source files: all but hidden files and folders,
    __pycache__ and compiled objects. What a workflow code digest covers, and what is compared between an
    installed package and the checkout."""
    directory = Path(directory)
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.suffix not in _SKIP_SUFFIXES
                  and not any(part.startswith(".") or part == "__pycache__"
                              for part in p.relative_to(directory).parts))


def source_digest(root: Path = REPO_ROOT) -> str | None:
    """SHA-256 over the C++ sources and CMakeLists.txt, computed as CMakeLists.txt does; None outside a checkout."""
    cpp = root / "cpp"
    cmake = root / "CMakeLists.txt"
    if not cpp.is_dir() or not cmake.is_file():
        return None
    files = [p for p in cpp.rglob("*") if p.is_file() and p.suffix in {".h", ".cc", ".cpp", ".inc"}]
    files.append(cmake)
    return files_digest(root, [p.relative_to(root).as_posix() for p in files])


# --------------------------------------------------------------------------- code digests of the workflow's rules
#
# Snakemake reruns a job when its script changes, not when the package code the script imports changes. So each
# rule's params carry a digest of every source file its script reaches through imports: the import closure,
# computed here from the code itself, so that it cannot drift from what the job really runs.

_COMPILED = "vaepipe._core"


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of a vaepipe module under root (a package's __init__.py), or None if there is none."""
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@lru_cache(maxsize=None)
def _parse(path: str, mtime_ns: int, size: int):
    import ast

    return ast.parse(Path(path).read_text(encoding="utf-8"))


def _tree(source: Path):
    """The parsed source file, once per version of it: the Snakefile computes every rule's closure, and each
    closure visits the same few dozen files."""
    stat = source.stat()
    return _parse(str(source), stat.st_mtime_ns, stat.st_size)


def _lazy_exports(source: Path) -> dict[str, str] | None:
    """A lazy package's ``EXPORTS = {name: submodule}`` (see vaepipe/io/__init__.py), or None for an eager one."""
    import ast

    for node in _tree(source).body:
        target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "EXPORTS" and isinstance(node.value, ast.Dict):
            return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.value.keys, node.value.values)}
    return None


def _submodules(root: Path, package: str) -> list[str]:
    folder = root.joinpath(*package.split("."))
    return sorted(f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")


def _imports(root: Path, module: str, source: Path) -> set[str]:
    """The vaepipe modules one file imports, at module level or inside functions, as Python would load them:
    a package's __init__ with each of its modules; for a lazy package (one with EXPORTS) imported whole, every
    module it can load, and for a name taken from it, the module that defines the name."""
    import ast

    found: set[str] = set()

    def add(name: str, whole: bool) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            found.add(".".join(parts[:i]))
        file = _module_file(root, name)
        if whole and file is not None and file.name == "__init__.py" and _lazy_exports(file) is not None:
            found.update(_submodules(root, name))

    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(_tree(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vaepipe":
                    add(alias.name, whole=True)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "vaepipe":
                continue
            add(origin, whole=False)
            origin_file = _module_file(root, origin)
            exports = _lazy_exports(origin_file) if origin_file and origin_file.name == "__init__.py" else None
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                if submodule == _COMPILED or _module_file(root, submodule) is not None:
                    add(submodule, whole=True)
                elif exports is not None:
                    if alias.name in exports:
                        add(f"{origin}.{exports[alias.name]}", whole=False)
                    else:  # "*" or an unknown name: everything the package can load
                        found.update(_submodules(root, origin))
    return found


def import_closure(script: str | Path, root: Path = REPO_ROOT, stop_at=()) -> tuple[list[str], bool]:
    """Source files (paths relative to root) that a script or module file reaches through vaepipe imports, the
    file itself first, and whether the closure loads the compiled core.

    stop_at : modules (e.g. ``"vaepipe.plots"``) whose own imports are not followed and whose file is left out:
        for a rule whose output the module only draws (see workflow/rules/common.smk).
    """
    root = Path(root)
    script = Path(script) if Path(script).is_absolute() else root / script
    stop = set(stop_at)
    files, compiled = [script.relative_to(root).as_posix()], False
    seen: set[str] = set()
    todo = sorted(_imports(root, "__main__", script))
    while todo:
        module = todo.pop()
        if module in seen or module in stop:
            continue
        seen.add(module)
        if module == _COMPILED:
            compiled = True
            continue
        file = _module_file(root, module)
        if file is None:
            raise ValueError(f"import closure of {script}: module {module} is imported but has no source file "
                             f"under {root}; fix the import or add the module")
        files.append(file.relative_to(root).as_posix())
        todo.extend(sorted(_imports(root, module, file) - seen))
    return [files[0], *sorted(set(files[1:]))], compiled


def compiled_sources(root: Path = REPO_ROOT) -> list[str]:
    """The compiled core's sources (relative to root): every source file under cpp/, and CMakeLists.txt."""
    return [f"cpp/{name}" for name in source_files(Path(root) / "cpp")] + ["CMakeLists.txt"]


#: Modules whose imports a rule's digest does not follow, by workflow script. One exception, by design: the
#: sampling rules do not follow vaepipe.plots, so that a cosmetic change of a figure never resamples (the
#: preliminary figure is drawn in the same job: snakemake --forcerun preliminary redraws it).
NOT_FOLLOWED: dict[str, tuple[str, ...]] = {"preliminary": ("vaepipe.plots",), "sample": ("vaepipe.plots",)}


def code_files(script: str | Path, root: Path = REPO_ROOT) -> list[str]:
    """Every source file a workflow script's job runs: its import closure (less :data:`NOT_FOLLOWED`), plus the
    compiled core's sources when the closure loads the core."""
    files, compiled = import_closure(script, root, NOT_FOLLOWED.get(Path(script).stem, ()))
    return files[1:] + (compiled_sources(root) if compiled else [])


def code_digest(script: str | Path, root: Path = REPO_ROOT) -> str:
    """:func:`files_digest` of :func:`code_files`: changes exactly when a file the script's job runs changes."""
    return files_digest(root, code_files(script, root))


# --------------------------------------------------------------------------- installed package vs checkout

class InstallMismatch(RuntimeError):
    """The vaepipe that the jobs import is not the workflow checkout's code."""


_PROBE = """
import json
info = {}
try:
    import vaepipe
    info["package"] = vaepipe.__file__
    from vaepipe import _core
    info["core"] = _core.__file__
    info["core_digest"] = _core.source_digest
except ImportError as exc:
    info["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


def installed_package() -> dict:
    """What a job's Python imports: {"package": vaepipe/__init__.py, "core": the extension's file, "core_digest":
    its source digest}, or an "error" in place of what failed to import.

    Asked of a fresh interpreter in an empty directory, which is how Snakemake runs a job's script: this process
    cannot tell, because Snakemake puts the Snakefile's directory first on its sys.path, so that here a
    non-editable install is shadowed by the checkout's own vaepipe/ that the jobs never see."""
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=empty, capture_output=True, text=True,
                              timeout=300, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": f"{sys.executable} -c 'import vaepipe' failed: {(proc.stdout + proc.stderr)[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tree_differences(installed: Path, checkout: Path) -> list[str]:
    def hashes(directory: Path) -> dict[str, str]:
        if not directory.is_dir():
            return {}
        return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
                for name in source_files(directory)}

    ours, theirs = hashes(checkout), hashes(installed)
    found = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in theirs:
            found.append(f"vaepipe/{name} (only in the checkout)")
        elif name not in ours:
            found.append(f"vaepipe/{name} (only in the installed package)")
        elif ours[name] != theirs[name]:
            found.append(f"vaepipe/{name} (differs)")
    return found


def install_differences(checkout: Path, info: dict | None = None) -> list[str]:
    """How the vaepipe that the jobs import (:func:`installed_package`, or info) differs from the checkout: its
    files under vaepipe/ (sources and package data; the same file set as the code digests) and the C++ sources
    its compiled core was built from. Empty when the jobs run the checkout's code."""
    checkout = Path(checkout).resolve()
    info = installed_package() if info is None else info
    if not info.get("package"):
        return [f"vaepipe itself: the jobs' Python cannot import it ({info.get('error', 'a namespace package')})"]
    found = []
    package = Path(info["package"]).resolve().parent
    if package != (checkout / "vaepipe").resolve():  # an editable install of this checkout is its code
        found += _tree_differences(package, checkout / "vaepipe")
    expected = source_digest(checkout)
    if "core_digest" not in info:
        found.append(f"compiled core: the jobs' Python cannot import vaepipe._core ({info.get('error')})")
    elif expected is None:
        found.append(f"compiled core: {checkout} has no cpp/ and CMakeLists.txt to check it against")
    elif info["core_digest"] != expected:
        found.append("compiled core (built from other C++ sources than the checkout's cpp/ and CMakeLists.txt)")
    return found


def use_workflow_checkout(basedir) -> None:
    """Make basedir the checkout of this Snakemake process and its jobs, or refuse to run.

    Called by the Snakefile, which Snakemake parses in its main process and again in every cluster job. Exports
    VAEPIPE_WORKFLOW_DIR, so that every job records the workflow's git commit (vaepipe.io.git_commit) and checks
    the extension against the workflow's C++ sources (:func:`core`). Raises InstallMismatch, saying what differs
    and how to fix it, when the jobs would import other code than the checkout's (:func:`install_differences`):
    the rules' code digests are computed from the checkout, so the jobs must run exactly that code. A
    non-editable install of the unchanged checkout passes; set VAEPIPE_ALLOW_STALE_BUILD=1 to run anyway.
    """
    root = Path(basedir).resolve()
    os.environ[WORKFLOW_DIR_ENV] = str(root)
    info = installed_package()
    found = install_differences(root, info)
    if not found:
        return
    listed = found[:_MAX_LISTED] + ([f"... and {len(found) - _MAX_LISTED} more"] if len(found) > _MAX_LISTED
                                    else [])
    package = Path(info["package"]).parent if info.get("package") else "(not importable)"
    message = (
        f"the vaepipe that this workflow's jobs import is not the code of the workflow checkout. The code digests "
        f"that decide what reruns come from the checkout, so the jobs would run other code than they name.\n"
        f"  workflow checkout: {root}\n"
        f"  jobs import:       {package}  (with {sys.executable})\n"
        f"  compiled core:     {info.get('core', '(not importable)')}\n"
        f"  what differs:\n" + "".join(f"    {line}\n" for line in listed) +
        f"fix: install the checkout in editable mode, which makes every later edit the code that runs:\n"
        f"    {rebuild_hint(root)}\n"
        f"(the README's install command, run in {root}); or set {ALLOW_STALE_ENV}=1 to run the installed code "
        f"anyway (its results will not match their code digests).")
    if _allow_stale():
        print(f"warning: {message}\n({ALLOW_STALE_ENV} is set: running anyway)", file=sys.stderr)
        return
    raise InstallMismatch(message)
