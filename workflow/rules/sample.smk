# Sampling stages: a preliminary run per state point (step size, equilibration, decorrelation time), then the
# production run (independent chains, one configuration per decorrelation time).


rule preliminary:
    output:
        summary="results/preliminary/{state}.json",
        plot=report(
            "results/preliminary/{state}.png",
            caption="../report/preliminary.rst",
            category="Sampling",
            subcategory="Preliminary runs",
            labels={"state": "{state}"},
        ),
    log:
        "logs/preliminary/{state}.log",
    benchmark:
        "results/benchmarks/preliminary/{state}.tsv"
    # Every later stage waits for the samples and features, so they go first (priority 20; training 10, the
    # rest 0): a sample job (sampling.chains threads) must not wait behind long single-thread minimizations.
    priority: 20
    threads: 1
    resources:
        mem_mb=preliminary_mem_mb,
        runtime=30,
    params:
        seed=config["seed"],
        system=config_section("system"),
        state_point=state_point,
        preliminary=config_section("preliminary"),
        code=code_digest("preliminary"),
    script:
        "../scripts/preliminary.py"


rule sample:
    input:
        preliminary="results/preliminary/{state}.json",
    output:
        samples="results/samples/{state}.h5",
    log:
        "logs/sample/{state}.log",
    benchmark:
        "results/benchmarks/sample/{state}.tsv"
    priority: 20
    threads: config["sampling"]["chains"]
    resources:
        mem_mb=sample_mem_mb,
        runtime=60,
    params:
        seed=config["seed"],
        system=config_section("system"),
        state_point=state_point,
        sampling=sampling_section(),
        code=code_digest("sample"),
        checkpoint=sample_checkpoint,
    script:
        "../scripts/sample.py"


# The figure is its own job: a change of its binning or of the plotting code redraws it without resampling.
rule density:
    input:
        samples="results/samples/{state}.h5",
    output:
        density=report(
            "results/samples/{state}_density.png",
            caption="../report/density.rst",
            category="Sampling",
            subcategory="Density profiles",
            labels={"state": "{state}"},
        ),
    log:
        "logs/density/{state}.log",
    benchmark:
        "results/benchmarks/density/{state}.tsv"
    threads: 1
    resources:
        mem_mb=sample_mem_mb,
        runtime=10,
    params:
        bins=config["sampling"]["density_bins"],
        code=code_digest("density"),
    script:
        "../scripts/density.py"
