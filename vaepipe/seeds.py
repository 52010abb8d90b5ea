"""Derived seeds: every random stream of the workflow comes from the base seed plus names, never from a new number.

    derive_seed(base_seed, stage, state)          -> SeedSequence(entropy=[base_seed, w0, w1, w2, w3])
    derive_seed(base_seed, stage, state, chain=i) -> the same entropy with spawn_key=(i,)

``w0..w3`` are the first 128 bits (four little-endian uint32 words) of SHA-256 over ``"{stage}\\0{state}"``
(UTF-8). Python's ``hash()`` would not do: it is salted per process for strings. A chain's seed equals the
``i``-th child of ``derive_seed(base_seed, stage, state).spawn(...)``, so the chains of a state point are
NumPy's independent spawned streams; unlike ``spawn``, :func:`chain_seeds` does not depend on how often it was
called before.

Stage names in use: ``"preliminary"``, ``"sample"``, ``"split"`` (per state point), ``"train"`` and
``"evaluate"`` (per representation, passed as ``state``).
"""

from __future__ import annotations

import hashlib
import operator

import numpy as np

__all__ = ["derive_seed", "chain_seeds", "seed_provenance", "seed_int"]


def _name_words(stage: str, state: str) -> list[int]:
    digest = hashlib.sha256(f"{stage}\0{state}".encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def derive_seed(base_seed: int, stage: str, state: str = "", chain: int | None = None) -> np.random.SeedSequence:
    """The SeedSequence of one stage of one state point (and one chain, if given).

    Parameters
    ----------
    base_seed : int
        The config's ``seed``, >= 0.
    stage : str
        Workflow stage, e.g. ``"preliminary"`` or ``"sample"``.
    state : str
        State-point name, e.g. ``"gamma0.5_T1"``; empty for stage-wide streams.
    chain : int, optional
        Chain index >= 0; None for the stage-level sequence.
    """
    if isinstance(base_seed, bool):
        raise ValueError(f"base_seed must be a non-negative integer, got {base_seed!r}")
    try:
        base_seed = operator.index(base_seed)
    except TypeError:
        raise ValueError(f"base_seed must be a non-negative integer, got {base_seed!r}") from None
    if base_seed < 0:
        raise ValueError(f"base_seed must be a non-negative integer, got {base_seed}; use the config's seed")
    if not isinstance(stage, str) or not stage:
        raise ValueError(f"stage must be a non-empty string such as 'sample', got {stage!r}")
    if not isinstance(state, str):
        raise ValueError(f"state must be a state-point name string such as 'gamma0.5_T1', got {state!r}")
    entropy = [base_seed, *_name_words(stage, state)]
    if chain is None:
        return np.random.SeedSequence(entropy)
    if isinstance(chain, bool) or operator.index(chain) < 0:
        raise ValueError(f"chain must be an integer >= 0, got {chain!r}")
    return np.random.SeedSequence(entropy, spawn_key=(operator.index(chain),))


def chain_seeds(seed: np.random.SeedSequence, num_chains: int) -> list[np.random.SeedSequence]:
    """Seeds of chains 0..num_chains-1 below ``seed``: its children with spawn keys ``seed.spawn_key + (i,)``.

    Same sequences as ``seed.spawn(num_chains)`` on a fresh ``seed``, but stateless.
    """
    if num_chains < 1:
        raise ValueError(f"num_chains must be >= 1, got {num_chains}")
    return [np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size)
            for i in range(num_chains)]


def seed_provenance(seed: np.random.SeedSequence) -> dict:
    """JSON-able record of a SeedSequence: ``{'entropy': ..., 'spawn_key': [...]}`` (rebuild it with both)."""
    entropy = seed.entropy
    if isinstance(entropy, (list, tuple, np.ndarray)):
        entropy = [int(e) for e in entropy]
    else:
        entropy = int(entropy)
    return {"entropy": entropy, "spawn_key": [int(k) for k in seed.spawn_key]}


def seed_int(seed: np.random.SeedSequence | int) -> int:
    """A 31-bit integer for the frameworks' seed functions, drawn from the SeedSequence."""
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(1, dtype=np.uint32)[0] >> 1)
    return int(seed)
