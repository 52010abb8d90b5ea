# Featurization: each samples file becomes one file per learnable representation (voxel grids, distance matrices,
# sorted coordinates). Each job gets only its representation's parameters, so changing the voxel settings
# re-featurizes the voxel grids and nothing else.


rule featurize:
    input:
        samples="results/samples/{state}.h5",
    output:
        features="results/features/{representation}/{state}.h5",
    log:
        "logs/featurize/{representation}/{state}.log",
    benchmark:
        "results/benchmarks/featurize/{representation}/{state}.tsv"
    priority: 20
    threads: 1
    resources:
        mem_mb=featurize_mem_mb,
        runtime=20,
    params:
        features=feature_params,
        code=code_digest("featurize"),
    script:
        "../scripts/featurize.py"
