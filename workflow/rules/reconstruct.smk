# What each VAE decodes, back as particles: the test configurations reconstructed (voxel grids by Gaussian
# deposits, distance matrices by anchored Gram-matrix MDS, coordinates as they are) with their validity, RMSD and
# energies beside the baselines that bound them; and the latent energy landscape of the headline VAE.


rule reconstruct:
    input:
        model="results/models/{representation}/vae.keras",
        features=training_features,
        samples=training_samples(),
    output:
        arrays="results/reconstruction/{representation}/test.h5",
        metrics="results/reconstruction/{representation}/metrics.json",
        examples=report(
            "results/reconstruction/{representation}/examples.png",
            caption="../report/reconstruction_examples.rst",
            category="Reconstruction",
            subcategory="{representation}",
            labels={"representation": "{representation}", "figure": "configurations"},
        ),
        rmsd=report(
            "results/reconstruction/{representation}/rmsd.png",
            caption="../report/reconstruction_rmsd.rst",
            category="Reconstruction",
            subcategory="{representation}",
            labels={
                "representation": "{representation}",
                "figure": "RMSD and baselines",
            },
        ),
        energy=report(
            "results/reconstruction/{representation}/energy.png",
            caption="../report/reconstruction_energy.rst",
            category="Reconstruction",
            subcategory="{representation}",
            labels={"representation": "{representation}", "figure": "energies"},
        ),
    log:
        "logs/reconstruct/{representation}.log",
    benchmark:
        "results/benchmarks/reconstruct/{representation}.tsv"
    threads: config["analysis"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=60,
    params:
        seed=config["seed"],
        split=split_params(),
        reconstruction=reconstruction_params,
        code=code_digest("reconstruct"),
    script:
        "../scripts/reconstruct.py"


rule landscape:
    input:
        model="results/models/{representation}/vae.keras",
        latent="results/latent/{representation}.parquet",
        features=training_features,
    output:
        metrics="results/landscape/{representation}.json",
        figure=report(
            "results/landscape/{representation}.png",
            caption="../report/landscape.rst",
            category="Latent space",
            subcategory="energy landscape",
            labels={"representation": "{representation}"},
        ),
    log:
        "logs/landscape/{representation}.log",
    benchmark:
        "results/benchmarks/landscape/{representation}.tsv"
    threads: config["analysis"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=30,
    params:
        landscape=analysis_params("landscape_grid", "landscape_extent"),
        code=code_digest("landscape"),
    script:
        "../scripts/landscape.py"
