"""Load the compiled core, and refuse one that is missing or was built from other C++ sources.

Snakemake reruns sampling when the C++ sources change (their digest is a rule parameter), but it cannot rebuild
the extension. Without this check an edited sampler would silently rerun with the old binary.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_REBUILD_HINT = "rebuild it from the repository root with:  pip install -e . --no-build-isolation"


def files_digest(root: Path, names) -> str:
    """SHA-256 over files given by their paths relative to root: one line "name\nsha256(content)\n" each, in
    sorted order (the format CMakeLists.txt computes too). Changes when a file is added, removed, renamed or
    edited; also used by the workflow's code digests."""
    text = "".join(f"{name}\n{hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()}\n"
                   for name in sorted(names))
    return hashlib.sha256(text.encode()).hexdigest()


def source_digest(root: Path = REPO_ROOT) -> str | None:
    """SHA-256 over the C++ sources and CMakeLists.txt, computed as CMakeLists.txt does; None outside a checkout."""
    cpp = root / "cpp"
    cmake = root / "CMakeLists.txt"
    if not cpp.is_dir() or not cmake.is_file():
        return None
    files = [p for p in cpp.rglob("*") if p.is_file() and p.suffix in {".h", ".cc", ".cpp", ".inc"}]
    files.append(cmake)
    return files_digest(root, [p.relative_to(root).as_posix() for p in files])


@lru_cache(maxsize=1)
def core():
    """The compiled module ``vaepipe._core``, checked against the sources of this checkout."""
    try:
        from vaepipe import _core
    except ImportError as exc:
        raise ImportError(f"vaepipe's compiled extension (vaepipe._core) is missing: {exc}. "
                          f"Build and install it, e.g. {_REBUILD_HINT}") from exc
    expected = source_digest()
    if expected is not None and expected != _core.source_digest and not os.environ.get("VAEPIPE_ALLOW_STALE_BUILD"):
        raise ImportError(
            f"vaepipe's compiled extension ({_core.__file__}) was built from different C++ sources than those in "
            f"{REPO_ROOT / 'cpp'}; {_REBUILD_HINT}  (set VAEPIPE_ALLOW_STALE_BUILD=1 to use it anyway)")
    return _core


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


def _lazy_exports(source: Path) -> dict[str, str] | None:
    """A lazy package's ``EXPORTS = {name: submodule}`` (see vaepipe/io/__init__.py), or None for an eager one."""
    import ast

    for node in ast.parse(source.read_text(encoding="utf-8")).body:
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
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
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
    """The compiled core's sources (relative to root): every file under cpp/ and CMakeLists.txt."""
    root = Path(root)
    skip = {".pyc", ".pyo", ".so", ".o", ".a"}
    files = [p for p in (root / "cpp").rglob("*") if p.is_file() and p.suffix not in skip
             and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)]
    return sorted(p.relative_to(root).as_posix() for p in files) + ["CMakeLists.txt"]


def code_files(script: str | Path, root: Path = REPO_ROOT, stop_at=()) -> list[str]:
    """Every source file a workflow script's job runs: its import closure, plus the compiled core's sources when
    the closure loads the core."""
    files, compiled = import_closure(script, root, stop_at)
    return files[1:] + (compiled_sources(root) if compiled else [])


def code_digest(script: str | Path, root: Path = REPO_ROOT, stop_at=()) -> str:
    """:func:`files_digest` of :func:`code_files`: changes exactly when a file the script's job runs changes."""
    return files_digest(root, code_files(script, root, stop_at))
