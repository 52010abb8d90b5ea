# New configurations from every VAE: draws from a Gaussian mixture fitted to each state point's latent means,
# decoded to particles, optionally relaxed by a few Metropolis sweeps, and judged against Monte Carlo.


rule generate:
    input:
        model="results/models/{representation}/vae.keras",
        latent="results/latent/{representation}.parquet",
        features=training_features,
        samples=training_samples(),
        reconstruction="results/reconstruction/{representation}/test.h5",
    output:
        arrays=expand(
            "results/generation/{{representation}}/{state}.h5", state=TRAIN_STATES
        ),
        metrics="results/generation/{representation}/metrics.json",
        histograms=report(
            "results/generation/{representation}/energy_histograms.png",
            caption="../report/generation_energy.rst",
            category="Generation",
            subcategory="{representation}",
            labels={
                "representation": "{representation}",
                "figure": "energy histograms",
            },
        ),
        structure=report(
            "results/generation/{representation}/structure.png",
            caption="../report/generation_structure.rst",
            category="Generation",
            subcategory="{representation}",
            labels={"representation": "{representation}", "figure": "g(r) and rho(z)"},
        ),
    log:
        "logs/generate/{representation}.log",
    benchmark:
        "results/benchmarks/generate/{representation}.tsv"
    threads: config["analysis"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=60,
    params:
        seed=config["seed"],
        split=split_params(),
        generation=generation_params(),
        code=code_digest("generate"),
    script:
        "../scripts/generate.py"
