# Learning: one beta-VAE per representation, trained on the features of every state point together, then every
# sample encoded into the latent space. TensorFlow is imported only by these jobs.


rule train_vae:
    input:
        features=training_features,
    output:
        model="results/models/{representation}/vae.keras",
        history="results/models/{representation}/history.csv",
        metrics="results/models/{representation}/metrics.json",
        loss=report(
            "results/models/{representation}/loss.png",
            caption="../report/loss.rst",
            category="Learning",
            subcategory="{representation}",
            labels={"representation": "{representation}", "figure": "loss curves"},
        ),
        reconstructions=report(
            "results/models/{representation}/reconstructions.png",
            caption="../report/reconstructions.rst",
            category="Learning",
            subcategory="{representation}",
            labels={"representation": "{representation}", "figure": "reconstructions"},
        ),
    log:
        "logs/train_vae/{representation}.log",
    benchmark:
        "results/benchmarks/train_vae/{representation}.tsv"
    priority: 10
    threads: config["vae"]["threads"]
    resources:
        mem_mb=stream_mem_mb,
        runtime=120,
        gpu=config["vae"]["gpus"],
    params:
        seed=config["seed"],
        split=split_params(),
        deterministic=config["vae"]["deterministic"],
        stream=config["vae"]["stream"],
        model=model_params,
        code=code_digest("train_vae"),
    script:
        "../scripts/train_vae.py"


rule encode:
    input:
        model="results/models/{representation}/vae.keras",
        features=training_features,
    output:
        latent="results/latent/{representation}.parquet",
    log:
        "logs/encode/{representation}.log",
    benchmark:
        "results/benchmarks/encode/{representation}.tsv"
    threads: config["analysis"]["threads"]
    resources:
        mem_mb=stream_mem_mb,
        runtime=30,
    params:
        seed=config["seed"],
        split=split_params(),
        code=code_digest("encode"),
    script:
        "../scripts/encode.py"


# Reconstruction quality against latent size, for the particle VAE: the linear code at every size, and the VAE
# at the configured size and at analysis.latent_scan (each a full training).
rule latent_scan:
    input:
        features=training_features,
        metrics="results/models/{representation}/metrics.json",
    output:
        metrics="results/analysis/latent_size/{representation}.json",
        figure=report(
            "results/analysis/latent_size/{representation}.png",
            caption="../report/latent_size.rst",
            category="Latent space",
            subcategory="latent size",
            labels={"representation": "{representation}"},
        ),
    log:
        "logs/latent_scan/{representation}.log",
    benchmark:
        "results/benchmarks/latent_scan/{representation}.tsv"
    threads: config["vae"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        seed=config["seed"],
        split=split_params(),
        deterministic=config["vae"]["deterministic"],
        model=model_params,
        scan={"sizes": config["analysis"]["latent_scan"]},
        code=code_digest("latent_scan"),
    script:
        "../scripts/latent_scan.py"
