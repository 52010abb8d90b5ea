# The learned energy functional F_theta(n) -> U_LJ on voxel densities (train_functional), and its transfer to a
# gravity it never saw (functional_transfer). It trains like a VAE: vae.threads, vae.gpus.


rule train_functional:
    input:
        features=expand("results/features/voxel/{state}.h5", state=TRAIN_STATES),
        samples=training_samples(),
        quench=expand("results/quench/{state}.h5", state=TRAIN_STATES),
    output:
        model="results/functional/functional.keras",
        metrics="results/functional/metrics.json",
        parity=report(
            "results/functional/parity.png",
            caption="../report/functional.rst",
            category="Minimization",
            labels={"figure": "learned functional"},
        ),
    log:
        "logs/train_functional/functional.log",
    benchmark:
        "results/benchmarks/train_functional/functional.tsv"
    priority: 10
    threads: config["vae"]["threads"]
    resources:
        mem_mb=functional_mem_mb,
        runtime=60,
        gpu=config["vae"]["gpus"],
    params:
        seed=config["seed"],
        split=split_params(),
        functional=minimization_params("functional")["functional"],
        code=code_digest("train_functional"),
    script:
        "../scripts/train_functional.py"


rule functional_transfer:
    input:
        functional="results/functional/functional.keras",
        features=expand("results/features/voxel/{state}.h5", state=HELDOUT_STATES),
        samples=heldout_samples(),
        quench=expand("results/quench/{state}.h5", state=HELDOUT_STATES),
    output:
        metrics="results/functional/transfer.json",
        figure=report(
            "results/functional/transfer.png",
            caption="../report/functional_transfer.rst",
            category="Minimization",
            labels={"figure": "functional transfer"},
        ),
    log:
        "logs/functional_transfer/transfer.log",
    benchmark:
        "results/benchmarks/functional_transfer/transfer.tsv"
    threads: config["vae"]["threads"]
    resources:
        mem_mb=functional_mem_mb,
        runtime=60,
        gpu=config["vae"]["gpus"],
    params:
        seed=config["seed"],
        split=split_params(),
        functional=minimization_params("functional")["functional"],
        transfer=minimization_params("transfer")["transfer"],
        code=code_digest("functional_transfer"),
    script:
        "../scripts/functional_transfer.py"
