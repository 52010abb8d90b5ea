"""Stage of workflow/rules/featurize.smk: one state point's samples in one representation."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

import numpy as np

from vaepipe import representations
from vaepipe.io.features import write_features
from vaepipe.io.samples import read_samples
from vaepipe.stages import StageResult, path, wildcard

__all__ = ["featurize"]

#: Attributes of the samples file that the features file repeats.
_COPIED = ("gamma", "temperature", "n_particles", "box_length", "dim", "boundary", "seed")


def featurize(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``featurize``: the ``samples`` of one state point (wildcard ``state``) in one representation
    (wildcard ``representation``, parameters ``params["features"]``): output ``features`` (HDF5)."""
    representation = wildcard(wildcards, "representation")
    start = time.perf_counter()
    samples = read_samples(path(input, "samples"))
    result = representations.featurize(samples, representation, params["features"])
    print(f"{representation}: {samples.num_samples} samples -> features {result.features.shape} "
          f"in {time.perf_counter() - start:.2f} s", file=sys.stderr)

    def write(target, prov):
        attrs = {**{k: samples.attrs[k] for k in _COPIED}, **result.attrs, "state": wildcard(wildcards, "state"),
                 "config": prov["config"], "git_commit": prov["git_commit"]}
        write_features(target, representation, result.features, samples.energy, samples.chain,
                       np.arange(samples.num_samples), attrs, order=result.order, anchors=result.anchors)

    return StageResult(outputs={"features": write}, values={"features": result})
