"""Stages of workflow/rules/sample.smk: the preliminary run, the sampling run, and the density figure."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from vaepipe.io.checkpoints import remove_checkpoint
from vaepipe.io.samples import read_preliminary, read_samples, write_preliminary, write_samples
from vaepipe.mc import simd_level
from vaepipe.preliminary import run_preliminary
from vaepipe.sampling import run_sampling
from vaepipe.seeds import derive_seed
from vaepipe.stages import StageResult, figure, path, wildcard

__all__ = ["preliminary", "sample", "density"]


def preliminary(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``preliminary``: step tuning, equilibration and decorrelation time of one state point (wildcard
    ``state``). Outputs ``plot`` (trace and autocorrelation figure) and ``summary`` (JSON, what sampling reads)."""
    from vaepipe import plots  # matplotlib only in the jobs that draw

    state = wildcard(wildcards, "state")
    seed = derive_seed(params["seed"], "preliminary", state)
    result = run_preliminary(params["system"], params["state_point"], params["preliminary"], seed, state=state)
    # The figure first and the summary last: the summary is what the next stage reads, so it alone marks completion.
    return StageResult(
        outputs={"plot": figure(plots.preliminary_figure(result)),
                 "summary": lambda target, prov: write_preliminary(target, {**result.summary, "provenance": prov})},
        seed=seed, values={"result": result})


def sample(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``sample``: the sampling run of one state point (wildcard ``state``) after its ``preliminary`` summary,
    in ``threads`` parallel chains, checkpointed to ``params["checkpoint"]`` (path, interval in seconds; not a
    rule output, removed once the samples are written). Output ``samples`` (HDF5, the contract file)."""
    params = dict(params)
    # Where and how often to checkpoint changes no result: kept out of the provenance (see common.smk).
    checkpoint = params.pop("checkpoint")
    state = wildcard(wildcards, "state")
    seed = derive_seed(params["seed"], "sample", state)
    print(f"pair kernel: {simd_level()}", file=sys.stderr)
    result = run_sampling(params["system"], params["state_point"], params["sampling"],
                          read_preliminary(path(input, "preliminary")), seed, threads=threads, state=state,
                          checkpoint=checkpoint["path"], checkpoint_interval=checkpoint["interval"],
                          code=params["code"])

    def write(target, prov):
        attrs = {**result.attrs, "seed": params["seed"], "config": prov["config"], "seed_entropy": prov["seed"],
                 "git_commit": prov["git_commit"]}
        write_samples(target, result.positions, result.energy, result.chain, attrs)

    return StageResult(outputs={"samples": write}, seed=seed, provenance_params=params,
                       after=lambda: remove_checkpoint(checkpoint["path"]), values={"result": result})


def density(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``density``: the density-profile figure of one state point's ``samples`` (output ``density``), in its
    own job so that a figure never resamples."""
    from vaepipe import plots

    samples = read_samples(path(input, "samples"))
    return StageResult(outputs={"density": figure(plots.density_figure(samples.positions, samples.attrs,
                                                                       params["bins"]))})
