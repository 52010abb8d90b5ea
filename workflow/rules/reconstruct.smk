# From decoded distance matrices back to physics: Gram-matrix (classical MDS) reconstruction of the test set and
# its energies, then generation from the prior and the energy landscape of the latent plane.


rule reconstruct:
    input:
        model="results/models/distance/vae.keras",
        features=expand("results/features/distance/{state}.h5", state=TRAIN_STATES),
        samples=training_samples(),
    output:
        arrays="results/reconstruction/test.h5",
        metrics="results/reconstruction/metrics.json",
        examples=report(
            "results/reconstruction/examples.png",
            caption="../report/reconstruction_examples.rst",
            category="Reconstruction",
            labels={"figure": "configurations"},
        ),
        rmsd=report(
            "results/reconstruction/rmsd.png",
            caption="../report/reconstruction_rmsd.rst",
            category="Reconstruction",
            labels={"figure": "RMSD by method"},
        ),
        energy=report(
            "results/reconstruction/energy.png",
            caption="../report/reconstruction_energy.rst",
            category="Reconstruction",
            labels={"figure": "energies"},
        ),
    log:
        "logs/reconstruct/distance.log",
    benchmark:
        "results/benchmarks/reconstruct/distance.tsv"
    conda:
        "../../environment.yml"
    threads: config["vae"]["threads"]
    resources:
        mem_mb=distance_mem_mb,
        runtime=60,
    params:
        seed=config["seed"],
        split=split_params(),
        reconstruction=config_section("reconstruction"),
        code=code_digest("reconstruct"),
    script:
        "../scripts/reconstruct.py"


rule generate:
    input:
        model="results/models/distance/vae.keras",
        latent="results/latent/distance.parquet",
        reconstruction="results/reconstruction/test.h5",
        samples=training_samples(),
    output:
        arrays="results/generation/generated.h5",
        metrics="results/generation/metrics.json",
        histograms=report(
            "results/generation/energy_histograms.png",
            caption="../report/generation_energy.rst",
            category="Generation",
            labels={"figure": "energy histograms"},
        ),
        landscape=report(
            "results/generation/landscape.png",
            caption="../report/landscape.rst",
            category="Generation",
            labels={"figure": "latent energy landscape"},
        ),
    log:
        "logs/generate/distance.log",
    benchmark:
        "results/benchmarks/generate/distance.tsv"
    conda:
        "../../environment.yml"
    threads: config["vae"]["threads"]
    resources:
        mem_mb=distance_mem_mb,
        runtime=30,
    params:
        seed=config["seed"],
        generation=generation_params(),
        code=code_digest("generate"),
    script:
        "../scripts/generate.py"
