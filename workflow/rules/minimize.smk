# Energy minima, exact and through the VAEs' latent spaces (Costa, Scriva & Pilati 2024): quenches of MC samples,
# reference minima by basin hopping, a learned energy functional on voxel densities, latent descents against
# the direct route and the quench-only baseline, and the functional's transfer to a new gravity.


rule minimize:
    input:
        samples=source_file("results/samples/{state}.h5"),
        particle_features=source_file("results/features/particles/{state}.h5"),
        voxel_features=source_file("results/features/voxel/{state}.h5"),
        particle_model="results/models/particles/vae.keras",
        voxel_model="results/models/voxel/vae.keras",
        functional="results/functional/functional.keras",
        references=reference_files,
    output:
        record="results/minimization/{state}.json",
        arrays="results/minimization/{state}.h5",
        figure=report(
            "results/minimization/{state}.png",
            caption="../report/minimization.rst",
            category="Minimization",
            subcategory="{state}",
            labels={"state": "{state}", "figure": "descent paths"},
        ),
    log:
        "logs/minimize/{state}.log",
    benchmark:
        "results/benchmarks/minimize/{state}.tsv"
    threads: config["minimization"]["threads"]
    resources:
        mem_mb=functional_mem_mb,
        runtime=60,
    params:
        seed=config["seed"],
        split=split_params(),
        state_point=minimization_state_point,
        minimization=minimization_params(
            "starts", "steps", "learning_rate", "optimizer", "record_interval"
        ),
        code=code_digest("minimize"),
    script:
        "../scripts/minimize.py"
