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
