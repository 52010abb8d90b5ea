"""File layouts of vaepipe: the only package that reads or writes result files. One module a file kind:

    samples      results/samples/{state}.h5 (contract) and results/preliminary/{state}.json
    checkpoints  results/checkpoints/sample/{state}.h5, the resumable state of a sample job
    features     results/features/{representation}/{state}.h5
    models       results/models/{representation}/vae.keras (byte-reproducible) and history tables
    latent       results/latent/{representation}.parquet
    arrays       results/reconstruction/test.h5, results/generation/generated.h5
    summary      results/summary.json and its report table
    figures      PNG and PDF figures with their provenance
    provenance   the record every file carries: parameters, seed, version, git commit
    _files       atomic writes and canonical JSON, which all of them use

Each module's docstring gives its layout. Every name is importable from ``vaepipe.io`` itself, as before the
split. ``io`` imports no stage and no plotting code (figures arrive as matplotlib figures).

Every write is atomic: the file is written under a temporary name in the destination directory, flushed to
disk, and renamed over the destination, so a failed or interrupted job never leaves a file that looks complete.
Writes are byte-reproducible: the same content gives the same bytes (no HDF5 timestamps, sorted attributes and
JSON keys, no dates in figure metadata).
"""

from vaepipe.io._files import _jsonable  # noqa: F401  (tests check the JSON conversion itself)
from vaepipe.io._files import (
    atomic_path,
    dumps,
    write_json,
    read_json,
)
from vaepipe.io.samples import (
    SAMPLES_FORMAT,
    PRELIMINARY_FORMAT,
    SAMPLES_ATTRS,
    PRELIMINARY_KEYS,
    Samples,
    write_samples,
    read_samples,
    write_preliminary,
    read_preliminary,
)
from vaepipe.io.checkpoints import (
    CHECKPOINT_FORMAT,
    ChainCheckpoint,
    write_checkpoint,
    read_checkpoint,
    remove_checkpoint,
)
from vaepipe.io.features import (
    FEATURES_FORMAT,
    FEATURES_ATTRS,
    FEATURES_REPRESENTATION_ATTRS,
    Features,
    write_features,
    read_features,
)
from vaepipe.io.models import (
    MODEL_FORMAT,
    write_model,
    read_model,
    model_provenance,
    write_table_csv,
)
from vaepipe.io.latent import (
    LATENT_FORMAT,
    LATENT_LABELS,
    write_latent,
    read_latent,
)
from vaepipe.io.arrays import (
    RECONSTRUCTION_FORMAT,
    GENERATED_FORMAT,
    write_arrays,
    read_arrays,
)
from vaepipe.io.summary import (
    SUMMARY_FORMAT,
    SUMMARY_KEYS,
    SUMMARY_DESCRIPTIONS,
    write_summary,
    read_summary,
    write_summary_table,
)
from vaepipe.io.figures import (
    save_figure,
    figure_provenance,
)
from vaepipe.io.provenance import (
    git_commit,
    provenance,
)

__all__ = [
    "atomic_path",
    "dumps",
    "write_json",
    "read_json",
    "SAMPLES_FORMAT",
    "PRELIMINARY_FORMAT",
    "SAMPLES_ATTRS",
    "PRELIMINARY_KEYS",
    "Samples",
    "write_samples",
    "read_samples",
    "write_preliminary",
    "read_preliminary",
    "CHECKPOINT_FORMAT",
    "ChainCheckpoint",
    "write_checkpoint",
    "read_checkpoint",
    "remove_checkpoint",
    "FEATURES_FORMAT",
    "FEATURES_ATTRS",
    "FEATURES_REPRESENTATION_ATTRS",
    "Features",
    "write_features",
    "read_features",
    "MODEL_FORMAT",
    "write_model",
    "read_model",
    "model_provenance",
    "write_table_csv",
    "LATENT_FORMAT",
    "LATENT_LABELS",
    "write_latent",
    "read_latent",
    "RECONSTRUCTION_FORMAT",
    "GENERATED_FORMAT",
    "write_arrays",
    "read_arrays",
    "SUMMARY_FORMAT",
    "SUMMARY_KEYS",
    "SUMMARY_DESCRIPTIONS",
    "write_summary",
    "read_summary",
    "write_summary_table",
    "save_figure",
    "figure_provenance",
    "git_commit",
    "provenance",
]
