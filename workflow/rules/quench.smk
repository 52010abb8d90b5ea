# Minima of the exact energy: the inherent structures of MC samples (quench) and reference minima by basin
# hopping (reference_minimum). State-point helpers (MIN_STATES, source_file, ...) are in minimize.smk.


rule quench:
    input:
        samples="results/samples/{state}.h5",
    output:
        arrays="results/quench/{state}.h5",
    log:
        "logs/quench/{state}.log",
    benchmark:
        "results/benchmarks/quench/{state}.tsv"
    threads: 1
    resources:
        mem_mb=sample_mem_mb,
        runtime=30,
    params:
        seed=config["seed"],
        split=split_params(),
        quench_samples=config["minimization"]["quench_samples"],
        code=code_digest("quench"),
    script:
        "../scripts/quench.py"


rule reference_minimum:
    input:
        quench=source_file("results/quench/{state}.h5"),
    output:
        arrays="results/reference/{state}.h5",
    log:
        "logs/reference_minimum/{state}.log",
    benchmark:
        "results/benchmarks/reference_minimum/{state}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        seed=config["seed"],
        state_point=minimization_state_point,
        reference=minimization_params("reference")["reference"],
        code=code_digest("reference_minimum"),
    script:
        "../scripts/reference_minimum.py"
