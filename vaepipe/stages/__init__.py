"""The workflow's stages: one module per rule file, one entry point per rule, named like the rule.

    sample.py       preliminary, sample, density           (workflow/rules/sample.smk)
    featurize.py    featurize                              (featurize.smk)
    train.py        train_vae, encode                      (train.smk)
    reconstruct.py  reconstruct, generate                  (reconstruct.smk)
    analyze.py      latent_analysis, anomaly, summary      (analyze.smk)
    export.py       export (extxyz of every configuration)  (export.smk)

Every entry point has the same signature, ``stage(input, params, wildcards, threads=1) -> StageResult``:
``input`` the rule's input files by name (Snakemake's ``snakemake.input``, or any mapping), ``params`` its params
(a dict), ``wildcards`` its wildcards (attribute access or a mapping). The result holds one writer per output,
keyed by the rule's output names; :func:`run` (what every workflow script calls) writes them with the job's
provenance. Only workflow scripts, tests and benchmarks import a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from vaepipe.io._files import write_json
from vaepipe.io.figures import save_figure
from vaepipe.io.records import provenance

__all__ = ["StageResult", "Writer", "multiple", "figure", "json_record", "path", "paths", "wildcard", "write_outputs", "run"]

#: Writes one output: (path, provenance record) -> None.
Writer = Callable[[str, dict], Any]


@dataclass
class StageResult:
    """What a stage produced, ready to write.

    outputs : {output name: writer}, in the order they are written: the file that marks a job complete (the one
        the next stage reads) comes last.
    seed : the stage's SeedSequence, recorded in the provenance (None for a stage without randomness).
    provenance_params : the params to record, when they differ from the job's (e.g. without settings that change
        no result).
    after : runs once every output is written (e.g. to remove a checkpoint).
    values : what the stage computed, for callers that want it in memory (tests, benchmarks).
    """

    outputs: dict[str, Writer]
    seed: np.random.SeedSequence | None = None
    provenance_params: Mapping[str, Any] | None = None
    after: Callable[[], None] | None = None
    values: dict[str, Any] = field(default_factory=dict)


def multiple(writer: Callable[[list, dict], Any]) -> Writer:
    """Mark a writer of a list output (e.g. one file per state point): it gets every path, in the rule's order."""
    writer.multiple = True
    return writer


def figure(fig) -> Writer:
    """A matplotlib figure, with the provenance embedded."""
    return lambda target, prov: save_figure(fig, target, provenance_record=prov)


def json_record(record: Mapping[str, Any]) -> Writer:
    """A JSON object with the provenance under ``"provenance"``."""
    return lambda target, prov: write_json(target, {**record, "provenance": prov})


def _lookup(files, name: str):
    return files[name] if isinstance(files, Mapping) else getattr(files, name)


def path(files, name: str) -> str:
    """One named input or output file."""
    value = _lookup(files, name)
    return str(value[0] if isinstance(value, (list, tuple)) else value)


def paths(files, name: str) -> list[str]:
    """A named list of input files (maybe empty)."""
    value = _lookup(files, name)
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def wildcard(wildcards, name: str) -> str:
    return str(_lookup(wildcards, name))


def write_outputs(result: StageResult, output, params: Mapping[str, Any]) -> None:
    """Write every output of a stage, each under its rule output name, with one provenance record."""
    names = list(output.keys()) if hasattr(output, "keys") else list(vars(output))
    missing = [n for n in names if n not in result.outputs]
    extra = [n for n in result.outputs if n not in names]
    if missing or extra:
        raise RuntimeError(f"the stage's outputs {list(result.outputs)} do not match the rule's {names} "
                           f"(missing {missing}, unexpected {extra}); rule and stage must name them alike")
    record = provenance(dict(result.provenance_params if result.provenance_params is not None else params),
                        result.seed)
    for name, writer in result.outputs.items():
        writer(paths(output, name) if getattr(writer, "multiple", False) else path(output, name), record)
    if result.after is not None:
        result.after()


def run(smk, stage: Callable[..., StageResult]) -> StageResult:
    """The body of every workflow script: the stage on the job's input, params, wildcards and threads, then its
    outputs written."""
    import scipy.linalg  # noqa: F401 - loads SciPy's own OpenBLAS now, so that the limit below reaches it too
    from threadpoolctl import threadpool_limits

    params = dict(smk.params.items())
    # The job's BLAS pools (NumPy's and SciPy's OpenBLAS) get the job's threads, not the machine's cores: jobs side
    # by side then do not oversubscribe the cores (basin hopping's L-BFGS-B ran 3-7x slower next to another job,
    # its idle BLAS threads spinning), and no result depends on how many cores the machine has.
    with threadpool_limits(limits=max(1, int(smk.threads)), user_api="blas"):
        result = stage(smk.input, params, smk.wildcards, threads=smk.threads)
    write_outputs(result, smk.output, params)
    return result
