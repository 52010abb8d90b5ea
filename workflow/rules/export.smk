# Every kind of configuration the pipeline produces as extended XYZ, for OVITO, VMD and ASE, in one job: MC
# samples, reconstructions (test configurations and their decoded particles), generated configurations, and,
# when the minimization runs, its minima and the inherent structures of MC samples. Layout: vaepipe/io/export.py.
# (Constants, not functions: snakemake --lint wants functions in common.smk, and these need no wildcards.)

# {output name: files} of the export rule; minima and quench are empty when the minimization does not run.
EXPORT_FILES = {
    "samples": expand("results/export/samples/{state}.extxyz", state=STATES),
    "reconstruction": expand(
        "results/export/reconstruction/{representation}/{version}.extxyz",
        representation=TRAINED,
        version=("original", "reconstructed"),
    ),
    "generation": expand(
        "results/export/generation/{representation}/{state}.extxyz",
        representation=TRAINED,
        state=TRAIN_STATES,
    ),
    "minima": expand("results/export/minima/{state}.extxyz", state=MIN_STATES),
    "quench": expand(
        "results/export/quench/{state}.extxyz", state=STATES if MINIMIZE else {}
    ),
}
# Every export file (targets of the default rule).
EXPORT_OUTPUTS = [path for files in EXPORT_FILES.values() for path in files]
# Memory of the export job in MB (vaepipe.plan, which checks it against the cap of every job).
EXPORT_MEM_MB = plan.export_mem_mb(config)


rule export:
    input:
        samples=expand("results/samples/{state}.h5", state=STATES),
        reconstruction=expand(
            "results/reconstruction/{representation}/test.h5", representation=TRAINED
        ),
        generation=expand(
            "results/generation/{representation}/{state}.h5",
            representation=TRAINED,
            state=TRAIN_STATES,
        ),
        minimization=expand("results/minimization/{state}.h5", state=MIN_STATES),
        records=minimization_records(),
        quench=expand("results/quench/{state}.h5", state=STATES if MINIMIZE else {}),
    output:
        **EXPORT_FILES,
    log:
        "logs/export/export.log",
    benchmark:
        "results/benchmarks/export/export.tsv"
    threads: 1
    resources:
        mem_mb=EXPORT_MEM_MB,
        runtime=30,
    params:
        min_distance=config["reconstruction"]["min_distance"],
        code=code_digest("export"),
    script:
        "../scripts/export.py"
