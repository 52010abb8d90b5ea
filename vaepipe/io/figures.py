"""Figures (PNG, PDF) saved atomically and byte-reproducibly, with the provenance embedded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from vaepipe.io._files import atomic_path, dumps


_NO_DATES = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


def save_figure(fig, path: str | Path, dpi: int = 120, provenance_record: Mapping[str, Any] | None = None) -> Path:
    """Save a matplotlib figure atomically, without version or date metadata (same figure -> same bytes).

    ``provenance_record`` (see :func:`provenance`) is embedded as canonical JSON: a PNG text chunk ``vaepipe``,
    a PDF's ``Subject``; :func:`figure_provenance` reads it back. A figure made by pyplot is closed afterwards; one
    made with ``matplotlib.figure.Figure`` needs no closing.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    try:
        if fmt not in _NO_DATES:
            raise ValueError(f"figure {path}: expected a .png or .pdf file name, got {path.suffix!r}")
        metadata = dict(_NO_DATES[fmt])
        if provenance_record is not None:
            metadata["vaepipe" if fmt == "png" else "Subject"] = dumps(provenance_record).strip()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    finally:
        if getattr(fig.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def figure_provenance(path: str | Path) -> dict:
    """The provenance embedded in a PNG figure by :func:`save_figure` ({} when there is none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", {}).get("vaepipe")
    return json.loads(text) if text else {}
