"""The compiled core, ``vaepipe._core``, loaded once and refused when it was built from other C++ sources than
the checkout's (:func:`vaepipe._build.checkout_root`).

Its own module, so that the workflow's code digests (vaepipe/_build.py) count the C++ sources for exactly the
jobs that load the core: the ones whose imports reach this module (through vaepipe.mc or vaepipe.energy).
"""

from __future__ import annotations

from functools import lru_cache

from vaepipe._build import ALLOW_STALE_ENV, _allow_stale, checkout_root, rebuild_hint, source_digest

__all__ = ["core"]


@lru_cache(maxsize=1)
def core():
    """The compiled module ``vaepipe._core``, checked against the C++ sources of :func:`checkout_root`."""
    root = checkout_root()
    try:
        from vaepipe import _core
    except ImportError as exc:
        raise ImportError(f"vaepipe's compiled extension (vaepipe._core) is missing: {exc}. "
                          f"Build and install it, e.g. {rebuild_hint(root)}") from exc
    expected = source_digest(root)
    if expected is not None and expected != _core.source_digest and not _allow_stale():
        raise ImportError(
            f"vaepipe's compiled extension ({_core.__file__}) was built from different C++ sources than those in "
            f"{root / 'cpp'} and {root / 'CMakeLists.txt'}; rebuild it with: {rebuild_hint(root)}  "
            f"(set {ALLOW_STALE_ENV}=1 to use it anyway)")
    return _core
