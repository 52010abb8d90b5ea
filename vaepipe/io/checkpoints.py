"""Sampling checkpoint, ``results/checkpoints/sample/{state}.h5`` (not a workflow output: Snakemake deletes the
outputs of a failed job, and this file must outlive one; the sample rule removes it once the samples are
written)::

    chain_{i}/positions           (k, N, dim) float64   the k samples chain i stored so far
    chain_{i}/energy              (k,)        float64
    chain_{i}/sampler_positions   (N, dim)    float64   Sampler.get_state(): positions, and
    chain_{i}/rng_state           (4,)        uint64    the RNG state, ...
    chain_{i}/neighbor_reference  (N, dim)    float64   ... only when the sampler had a neighbour list
    chain_{i} attrs               burn_in_done (sweeps of the current burn-in already run), raw_energy, energy,
                                  step_size, attempted, accepted
    attrs                         file_format, fingerprint (see vaepipe.sampling), state, num_chains
    A chain without a group had not reported yet and starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _attr_value, _remove_stale_temporaries, _scalar, atomic_path


CHECKPOINT_FORMAT = "vaepipe-sampling-checkpoint-1"


@dataclass(frozen=True)
class ChainCheckpoint:
    """Where one chain of a sampling run stood: enough to continue it bit for bit.

    state : dict of :meth:`vaepipe.mc.Sampler.get_state`.
    positions : (k, N, dim) float64, sigma, the samples stored so far.  energy : (k,) float64, U/epsilon.
    burn_in_done : sweeps of the current burn-in already run (the initial one, or in mode 'restart' the one
        before sample k).
    """

    state: dict
    positions: np.ndarray
    energy: np.ndarray
    burn_in_done: int

    @property
    def num_samples(self) -> int:
        return int(self.energy.shape[0])


_CHECKPOINT_STATE_ATTRS = ("raw_energy", "energy", "step_size", "attempted", "accepted")


def write_checkpoint(path: str | Path, fingerprint: str, chains, attrs: Mapping[str, Any] | None = None) -> Path:
    """Write a sampling checkpoint atomically (layout in the module docstring).

    chains : one :class:`ChainCheckpoint` per chain, or None for a chain that has not reported yet.
    fingerprint : digest of everything the samples depend on; :func:`read_checkpoint` hands it back so that the
        caller can refuse a checkpoint of another run.
    """
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            f.attrs["file_format"] = CHECKPOINT_FORMAT
            f.attrs["fingerprint"] = str(fingerprint)
            f.attrs["num_chains"] = np.int64(len(chains))
            for name, value in sorted(dict(attrs or {}).items()):
                f.attrs[name] = _attr_value(name, value, None)
            for i, chain in enumerate(chains):
                if chain is None:
                    continue
                g = f.create_group(f"chain_{i}")
                state = chain.state
                g.create_dataset("positions", data=np.asarray(chain.positions, dtype=np.float64), track_times=False)
                g.create_dataset("energy", data=np.asarray(chain.energy, dtype=np.float64), track_times=False)
                g.create_dataset("sampler_positions", data=np.asarray(state["positions"], dtype=np.float64),
                                 track_times=False)
                g.create_dataset("rng_state", data=np.asarray(state["rng_state"], dtype=np.uint64),
                                 track_times=False)
                if state.get("neighbor_reference") is not None:
                    g.create_dataset("neighbor_reference", track_times=False,
                                     data=np.asarray(state["neighbor_reference"], dtype=np.float64))
                g.attrs["burn_in_done"] = np.int64(chain.burn_in_done)
                for name in ("raw_energy", "energy", "step_size"):
                    g.attrs[name] = np.float64(state[name])
                for name in ("attempted", "accepted"):
                    g.attrs[name] = np.int64(state[name])
    return Path(path)


def read_checkpoint(path: str | Path) -> tuple[str, list, dict]:
    """Read a sampling checkpoint: (fingerprint, [ChainCheckpoint or None per chain], attrs).

    ValueError when the file is not a readable checkpoint of this format (the caller then starts afresh).
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _scalar(v) for k, v in f.attrs.items()}
            if attrs.get("file_format") != CHECKPOINT_FORMAT:
                raise ValueError(f"file_format {attrs.get('file_format')!r}, expected {CHECKPOINT_FORMAT!r}")
            chains = []
            for i in range(int(attrs["num_chains"])):
                g = f.get(f"chain_{i}")
                if g is None:
                    chains.append(None)
                    continue
                state = {name: _scalar(g.attrs[name]) for name in _CHECKPOINT_STATE_ATTRS}
                state["positions"] = g["sampler_positions"][()]
                state["rng_state"] = g["rng_state"][()]
                state["neighbor_reference"] = g["neighbor_reference"][()] if "neighbor_reference" in g else None
                chains.append(ChainCheckpoint(state=state, positions=g["positions"][()], energy=g["energy"][()],
                                              burn_in_done=int(g.attrs["burn_in_done"])))
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable sampling checkpoint ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable sampling checkpoint ({exc})") from exc
    return str(attrs["fingerprint"]), chains, attrs


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint once its run's result is safely written (no error when there is none), and any
    temporary file of a checkpoint write that was killed."""
    path = Path(path)
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        _remove_stale_temporaries(path)
