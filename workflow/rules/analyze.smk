# The latent space of every trained VAE: gamma clustering and anomaly detection; then the summary of the run.


rule latent_analysis:
    input:
        latent="results/latent/{representation}.parquet",
        samples=training_samples(),
    output:
        metrics="results/analysis/latent/{representation}.json",
        figure=report(
            "results/analysis/latent/{representation}.png",
            caption="../report/latent.rst",
            category="Latent space",
            subcategory="gamma clustering",
            labels={"representation": "{representation}"},
        ),
    log:
        "logs/latent_analysis/{representation}.log",
    benchmark:
        "results/benchmarks/latent_analysis/{representation}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seed=config["seed"],
        analysis=analysis_params("knn_neighbors", "cv_folds"),
        code=code_digest("latent_analysis"),
    script:
        "../scripts/latent_analysis.py"


rule anomaly:
    input:
        model="results/models/{representation}/vae.keras",
        features=training_features,
        samples=training_samples(),
        heldout=heldout_features,
        heldout_samples=heldout_samples(),
    output:
        metrics="results/analysis/anomaly/{representation}.json",
        figure=report(
            "results/analysis/anomaly/{representation}.png",
            caption="../report/anomaly.rst",
            category="Latent space",
            subcategory="anomaly detection",
            labels={"representation": "{representation}"},
        ),
    log:
        "logs/anomaly/{representation}.log",
    benchmark:
        "results/benchmarks/anomaly/{representation}.tsv"
    threads: config["analysis"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=30,
    params:
        seed=config["seed"],
        split=split_params(),
        analysis=analysis_params("anomaly_score", "overlap_distance", "tilt_angle"),
        code=code_digest("anomaly"),
    script:
        "../scripts/anomaly.py"


rule summary:
    input:
        models=expand(
            "results/models/{representation}/metrics.json", representation=TRAINED
        ),
        latent=expand(
            "results/analysis/latent/{representation}.json", representation=TRAINED
        ),
        anomaly=expand(
            "results/analysis/anomaly/{representation}.json", representation=TRAINED
        ),
        reconstruction=expand(
            "results/reconstruction/{representation}/metrics.json",
            representation=TRAINED,
        ),
        generation=expand(
            "results/generation/{representation}/metrics.json",
            representation=TRAINED,
        ),
        minimization=minimization_records(),
        functional=functional_metrics(),
        transfer=transfer_metrics(),
    output:
        summary="results/summary.json",
        table=report(
            "results/summary.tsv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "summary.json"},
        ),
    log:
        "logs/summary/summary.log",
    benchmark:
        "results/benchmarks/summary/summary.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        headline=HEADLINE,
        representations=TRAINED,
        heldout_states=sorted({**HELDOUT_STATES, **TRANSFER_STATES}),
        code=code_digest("summary"),
    script:
        "../scripts/summary.py"
