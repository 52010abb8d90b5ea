"""Extended XYZ export, ``results/export/**.extxyz``, for OVITO, VMD and ASE (see README.md, "Export").

One file is a sequence of frames, one frame per configuration::

    N
    Lattice="L 0 0 0 L 0 0 0 L" Properties=species:S:1:pos:R:3 energy=U dim=3 <per-frame info> pbc="F F F"
    X x y z          (N lines; lengths in sigma, z the height)

- Species ``X`` (ASE's dummy element, atomic number 0) for every LJ particle: OVITO draws an unknown type with
  radius 0.5, which is the LJ particle's radius in sigma.
- The cell is the box, L x L x L (always set, whatever the boundary); ``pbc`` follows the boundary
  (:func:`pbc_of`): reflect (closed box) F F F, periodic T T T, slab T T F.
- ``energy`` is the total potential energy U/eps, gravity included; ASE's reader turns it into the frame's
  calculator result (``atoms.get_potential_energy()``, in eps, not eV). The other info keys are the caller's.
- Coordinates round-trip float64 exactly: ASE's extxyz writer formats them as ``%16.8f`` (1e-8 sigma), so this
  module lets ASE write each frame's header (count, Lattice, Properties, info, pbc, with ASE's quoting) and
  writes the coordinate columns itself, each float as its shortest exact decimal (``repr``).
- dim = 2: a configuration (x, h) is written as (x, h, 0), the height along y; the cell is L x L x L with
  pbc False along z, and every frame says ``dim=2``.

Writes are atomic (temporary name, then rename) and byte-reproducible.
"""

from __future__ import annotations

import io as _stringio
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _version, atomic_path

__all__ = ["EXTXYZ_FORMAT", "SPECIES", "pbc_of", "write_extxyz", "read_extxyz"]

#: Written into every frame as ``file_format``.
EXTXYZ_FORMAT = "vaepipe-extxyz-1"

#: The chemical symbol of every particle (ASE's dummy element).
SPECIES = "X"

# Which axes wrap, per boundary (vaepipe.boundary.RULES: "none", "all", "horizontal" = every axis but the height).
_WRAPS = {"reflect": "none", "periodic": "all", "slab": "horizontal"}

# Info keys that the extxyz header owns or that ASE parses itself.
_RESERVED = {"energy", "pbc", "Lattice", "Properties", "dim", "file_format", "vaepipe_version"}


def pbc_of(boundary: str, dim: int) -> tuple[bool, bool, bool]:
    """The three pbc flags of an exported frame: the axes that wrap under ``boundary`` (reflect: none, periodic:
    all, slab: all but the height, the last of ``dim``); the padding axis z of a dim = 2 frame never wraps."""
    if boundary not in _WRAPS:
        raise ValueError(f"boundary={boundary!r} is invalid: expected one of {tuple(_WRAPS)}")
    if dim not in (2, 3):
        raise ValueError(f"dim={dim!r} is invalid: expected 2 or 3")
    wraps = {"none": 0, "all": dim, "horizontal": dim - 1}[_WRAPS[boundary]]
    return tuple(axis < wraps for axis in range(3))


def _frame_value(name: str, value: Any) -> Any:
    """A Python scalar that ASE writes as one extxyz value (bool T/F, int, float as its exact repr, str)."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        if any(c in value for c in '"\n\\='):
            raise ValueError(f"info {name}={value!r}: a text value may not hold quotes, '=', backslashes or "
                             "newlines (OVITO and VMD read the header naively)")
        return value
    raise ValueError(f"info {name}={value!r} is a {type(value).__name__}: expected a bool, int, float or str")


def _check_key(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"info key {name!r} is invalid: expected a name of letters, digits and underscores")
    if name in _RESERVED:
        raise ValueError(f"info key {name!r} is reserved: the writer sets it (energy is its own argument)")
    return name


def write_extxyz(path: str | Path, positions, energy, box_length: float, boundary: str,
                 frame_info: Mapping[str, Any] | None = None, info: Mapping[str, Any] | None = None) -> Path:
    """Write configurations as an extended XYZ file, one frame each, atomically.

    positions : (S, N, dim) float, sigma; dim 2 or 3 (z, or y when dim = 2, the height).
    energy : (S,) float, U/eps of each configuration (``energy`` of each frame).
    box_length : float, sigma; the cell is L x L x L.
    boundary : "reflect", "periodic" or "slab" (the pbc flags, :func:`pbc_of`).
    frame_info : {name: (S,) values} per frame (bool, int, float or str), e.g. chain, sample_index, valid.
    info : {name: scalar} the same in every frame, e.g. state, gamma, temperature, representation.
    Every frame also carries ``dim``, ``file_format`` and ``vaepipe_version``. S = 0 writes an empty file.
    Raises ValueError naming what is wrong with shapes, lengths, values or keys.
    """
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[2] not in (2, 3):
        raise ValueError(f"positions of shape {positions.shape} are invalid: expected (S, N, dim) with dim 2 or 3, "
                         "one row of N particles per configuration")
    if not np.issubdtype(positions.dtype, np.floating):
        raise ValueError(f"positions of dtype {positions.dtype} are invalid: expected float coordinates in sigma")
    positions = positions.astype(np.float64, copy=False)
    num, n, dim = positions.shape
    energy = np.asarray(energy)
    if energy.shape != (num,) or not (np.issubdtype(energy.dtype, np.floating)
                                      or np.issubdtype(energy.dtype, np.integer)):
        raise ValueError(f"energy of shape {energy.shape} ({energy.dtype}) is invalid: expected ({num},) floats, one "
                         f"per configuration of positions {positions.shape}")
    box = float(box_length)
    if not (np.isfinite(box) and box > 0):
        raise ValueError(f"box_length={box_length!r} is invalid: expected a positive length in sigma")
    pbc = pbc_of(boundary, dim)
    per_frame = {}
    for name, values in (frame_info or {}).items():
        values = np.asarray(values)
        if values.shape != (num,):
            raise ValueError(f"frame_info[{name!r}] of shape {values.shape} is invalid: expected ({num},), one value "
                             f"per configuration of positions {positions.shape}")
        per_frame[_check_key(name)] = values.tolist() if values.dtype.kind != "S" else list(values)
    common = {_check_key(k): _frame_value(k, v) for k, v in (info or {}).items()}
    overlap = set(common) & set(per_frame)
    if overlap:
        raise ValueError(f"info keys {sorted(overlap)} are given both per frame and for every frame")

    from ase import Atoms
    from ase.io import write as ase_write

    cell = np.eye(3) * box
    coordinates = np.zeros((num, n, 3))
    coordinates[:, :, :dim] = positions
    images = []
    for k in range(num):
        atoms = Atoms([SPECIES] * n, positions=coordinates[k], cell=cell, pbc=pbc)
        atoms.info.update({"energy": _frame_value("energy", energy[k].item()), "dim": dim,
                           **{name: _frame_value(name, values[k]) for name, values in per_frame.items()},
                           **common, "file_format": EXTXYZ_FORMAT, "vaepipe_version": _version()})
        images.append(atoms)
    header = _stringio.StringIO()
    if images:
        ase_write(header, images, format="extxyz")
    lines = header.getvalue().splitlines()
    out = []
    for k in range(num):
        first = k * (n + 2)
        if lines[first] != str(n) or not all(line.split()[0] == SPECIES for line in lines[first + 2:first + 2 + n]):
            raise RuntimeError(f"ASE wrote frame {k} in an unexpected layout; this writer needs ase>=3.23")
        out += lines[first:first + 2]
        # ASE's '%16.8f' rounds to 1e-8 sigma; repr is the shortest decimal that reads back as the same float64.
        out += [f"{SPECIES} {x!r:>22} {y!r:>22} {z!r:>22}" for x, y, z in coordinates[k].tolist()]
    text = "".join(line + "\n" for line in out)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_extxyz(path: str | Path) -> list:
    """Every frame of an extended XYZ file as ASE Atoms (``ase.io.read(path, index=":")``); [] for an empty file."""
    from ase.io import read as ase_read

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export file {path} does not exist; produce it with the workflow's export rule")
    if path.stat().st_size == 0:
        return []
    return ase_read(path, index=":", format="extxyz")
