"""The Snakemake workflow end to end on a tiny config, in a temporary copy of the sources (conftest.py)."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import snakemake_command
from vaepipe import io
from vaepipe.io.arrays import MINIMIZATION_FORMAT, read_arrays
from vaepipe.representations import REPRESENTATIONS as ALL_REPRESENTATIONS

REPO = Path(__file__).resolve().parents[2]
STATES = ("gamma0_T1", "gamma1_T1")
TINY = (Path(__file__).resolve().parents[1] / "data" / "tiny.yaml").read_text()
REPRESENTATIONS = ("voxel", "distance", "particles")  # trained by tiny.yaml
FEATURIZED = ALL_REPRESENTATIONS  # every representation is featurized, trained or not


def _snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake on the copy of the sources at `workdir` (see conftest.py)."""
    return subprocess.run(snakemake_command(workdir, configfile, *args), capture_output=True, text=True,
                          timeout=600)


def _check(proc: subprocess.CompletedProcess) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    return text


@pytest.fixture(scope="module")
def runs(tiny_finished):
    """The session's finished run of the tiny config (conftest.py): (workdir, configfile). Its byte-for-byte
    reproducibility is checked by test_resume.py, which reruns it from scratch in another directory (killed twice
    on the way) and compares every file."""
    return tiny_finished


def _result_files(workdir: Path) -> dict[str, bytes]:
    files = {}
    for sub in ("results/preliminary", "results/samples", "results/features", "results/models", "results/latent",
                "results/reconstruction", "results/generation", "results/analysis", "results/landscape",
                "results/quench", "results/reference", "results/functional", "results/minimization",
                "results/export"):
        for path in sorted((workdir / sub).rglob("*")):
            if path.is_file():
                files[path.relative_to(workdir).as_posix()] = path.read_bytes()
    for name in ("results/summary.json", "results/summary.tsv"):
        files[name] = (workdir / name).read_bytes()
    return files


def test_outputs_follow_the_contract(runs):
    work, _ = runs
    for state in STATES:
        for rel in (f"results/preliminary/{state}.json", f"results/preliminary/{state}.png",
                    f"results/samples/{state}.h5", f"results/samples/{state}_density.png",
                    f"results/benchmarks/preliminary/{state}.tsv", f"results/benchmarks/sample/{state}.tsv",
                    f"results/benchmarks/density/{state}.tsv", f"logs/preliminary/{state}.log",
                    f"logs/sample/{state}.log", f"logs/density/{state}.log"):
            assert (work / rel).is_file(), rel
        prelim = io.read_preliminary(work / f"results/preliminary/{state}.json")
        samples = io.read_samples(work / f"results/samples/{state}.h5")
        a = samples.attrs
        assert samples.positions.shape == (40, 8, 3)
        assert sorted(set(samples.chain.tolist())) == [0, 1]
        assert a["gamma"] == prelim["gamma"] == (0.0 if state == "gamma0_T1" else 1.0)
        assert a["temperature"] == 1.0 and a["n_particles"] == 8 and a["box_length"] == 4.0 and a["dim"] == 3
        assert a["boundary"] == "reflect" and math.isnan(a["cutoff"]) and a["seed"] == 11
        for key in ("step_size", "equilibration_sweeps", "decorrelation_sweeps"):
            assert a[key] == prelim[key]
        assert 0 < a["acceptance_rate"] < 1
        assert prelim["provenance"]["config"]["preliminary"]["sweeps"] == 4000
        assert json.loads(a["config"])["sampling"]["samples_per_chain"] == 20
        assert (samples.positions >= 0).all() and (samples.positions <= 4.0).all()
        assert "sampling" in (work / f"logs/sample/{state}.log").read_text()
    # Snakemake's benchmarks stay under results/, apart from the repository's benchmarks/ folder
    assert not (work / "benchmarks").exists()
    leftovers = [p for p in (work / "results").rglob(".*") if p.is_file()]
    assert leftovers == []


def test_learning_stages_follow_their_layouts(runs):
    import pandas as pd

    work, _ = runs
    for representation in REPRESENTATIONS:
        feats = io.read_features(work / f"results/features/{representation}/gamma1_T1.h5")
        assert feats.features.dtype == "float32" and feats.num_samples == 40
        assert feats.features.min() >= 0 and feats.features.max() <= 1
        expected = {"voxel": (8, 8, 8), "distance": (16, 16), "coordinates": (24,),
                    "particles": (8, 3)}[representation]
        assert feats.features.shape[1:] == expected
        model_dir = work / f"results/models/{representation}"
        for name in ("vae.keras", "history.csv", "metrics.json", "loss.png", "reconstructions.png"):
            assert (model_dir / name).is_file(), (representation, name)
        history = pd.read_csv(model_dir / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        metrics = io.read_json(model_dir / "metrics.json")
        assert metrics["num_samples"] == metrics["split_sizes"]["test"] == 8  # 10% of 40 per state
        assert metrics["error_ratio"] > 0 and metrics["provenance"]["config"]["model"]["epochs"] == 2
        frame, attrs = io.read_latent(work / f"results/latent/{representation}.parquet")
        assert len(frame) == 80 and attrs["representation"] == representation
        latent_dim = {"coordinates": 2, "particles": 8}.get(representation, 3)
        assert [c for c in frame if c.startswith("z_mean_")] == [f"z_mean_{i}" for i in range(latent_dim)]
        assert frame.groupby("split").size().to_dict() == {"test": 8, "train": 64, "validation": 8}
        assert set(frame["gamma"]) == {0.0, 1.0}
        log = (work / f"logs/train_vae/{representation}.log").read_text()
        assert "epoch 2/2" in log and "mean-predictor baseline" in log
    # the same test samples for every representation
    splits = [io.read_latent(work / f"results/latent/{r}.parquet")[0] for r in REPRESENTATIONS]
    for other in splits[1:]:
        assert other[["state", "sample_index", "split"]].equals(splits[0][["state", "sample_index", "split"]])


def test_stages_after_learning_follow_their_layouts(runs):
    from vaepipe.io import SUMMARY_KEYS

    work, _ = runs
    num_test = 8  # 10% of 40 at each of the 2 trained state points
    for representation in REPRESENTATIONS:
        arrays, attrs = io.read_arrays(work / f"results/reconstruction/{representation}/test.h5",
                                       io.RECONSTRUCTION_FORMAT)
        for name in ("original", "reconstructed"):
            assert arrays[name].shape == (num_test, 8, 3), (representation, name)
        assert (arrays["reconstructed"] >= 0).all() and (arrays["reconstructed"] <= 4.0).all()
        assert sorted(set(arrays["state"])) == list(STATES) and attrs["representation"] == representation
        # the energies are the sampler's: the originals' match the samples files
        for state in STATES:
            samples = io.read_samples(work / f"results/samples/{state}.h5")
            rows = arrays["state"] == state
            assert np.allclose(arrays["energy_original"][rows], samples.energy[arrays["sample_index"][rows]],
                               rtol=1e-9, atol=1e-9)
        metrics = io.read_json(work / f"results/reconstruction/{representation}/metrics.json")
        assert 0 <= metrics["valid_fraction"] <= 1 and metrics["rmsd_random_pair_median"] > 0
        # the contract of results/generation/{representation}/{state}.h5
        for state in STATES:
            generated, gattrs = io.read_arrays(work / f"results/generation/{representation}/{state}.h5",
                                               io.GENERATED_FORMAT)
            assert generated["positions"].shape == (50, 8, 3) and generated["positions"].dtype == np.float64
            assert (generated["positions"] >= 0).all() and (generated["positions"] <= 4.0).all()
            assert gattrs["state"] == state and gattrs["representation"] == representation
            assert gattrs["gamma"] == (0.0 if state == "gamma0_T1" else 1.0) and gattrs["temperature"] == 1.0
            assert (gattrs["n_particles"], gattrs["box_length"], gattrs["dim"]) == (8, 4.0, 3)
            for k in (1, 3):
                assert generated[f"positions_relaxed{k}"].shape == (50, 8, 3)
        gen = io.read_json(work / f"results/generation/{representation}/metrics.json")
        assert set(gen["states"]) == set(STATES) and gen["relax_sweeps"] == [1, 3]
        assert 0 <= gen["mean_over_states"]["valid_fraction"] <= 1
    assert distance_extras(work)
    for representation in REPRESENTATIONS:
        latent = io.read_json(work / f"results/analysis/latent/{representation}.json")
        assert latent["chance"] == 0.5 and latent["num_samples"] == 80
        anomaly = io.read_json(work / f"results/analysis/anomaly/{representation}.json")
        assert 0 <= anomaly["auc_uniform"] <= 1 and anomaly["num_normal"] == num_test
        assert anomaly["auc_heldout_gamma"] is None  # NaN in JSON metrics is null; no held-out gamma configured
    summary = io.read_summary(work / "results/summary.json")
    for key in SUMMARY_KEYS:
        assert isinstance(summary[key], float), key
    assert math.isnan(summary["anomaly.auc_heldout_gamma"])  # no held-out gamma in this config
    assert summary["vae.distance.recon_error"] == io.read_json(work / "results/models/distance/metrics.json")[
        "recon_error"]
    # every figure carries its provenance
    for figure in (work / "results").rglob("*.png"):
        assert io.figure_provenance(figure)["vaepipe_version"], figure


def test_every_stage_wrote_its_files(runs):
    # per state: 4 sampling files + 4 features files; per representation: 5 model files + 1 latent file + 4
    # analysis files + 5 reconstruction files + 3 generation files and one per trained state point; the
    # headline's landscape 2, the latent-size curve 2, summary 2; per state point quench 1, reference 1 and
    # minimization 3 files, the functional 3 (no held-out gamma in tiny.yaml: no transfer files); exports: per
    # state point samples, minima and quench 1 each, per representation the reconstructions 2 and one generation
    # file per trained state point
    files = _result_files(runs[0])
    trained = [s for s in STATES]
    assert len(files) == ((4 + len(FEATURIZED) + 5 + 3) * len(STATES)
                          + (18 + len(trained) + 2 + len(trained)) * len(REPRESENTATIONS) + 6 + 3)


MINIMIZATION_KEYS = (
    "energy_reference", "reference_source", "reference_seeds_agreeing", "energy_latent_exact",
    "energy_latent_exact_before_quench", "energy_latent_functional", "energy_latent_functional_predicted",
    "energy_grid_descent", "energy_quench_only", "evaluations", "valid_path_fraction",
    "relative_gap_latent_exact", "relative_gap_latent_functional", "relative_gap_grid_descent",
    "relative_gap_quench_only")


def test_minimization_follows_its_contract(runs):
    """results/minimization/{state}.json and .h5 as the minimization issue defines them, the summary keys, and
    energies that are minima: no method ends above its start's quench by much, none below the reference."""
    work, _ = runs
    methods = ("latent_exact", "latent_functional", "grid_descent", "quench_only")
    for state in STATES:
        record = io.read_json(work / f"results/minimization/{state}.json")
        assert set(MINIMIZATION_KEYS) <= set(record), set(MINIMIZATION_KEYS) - set(record)
        assert record["reference_source"] in ("ccd", "basinhopping")
        assert set(record["evaluations"]) == set(record["valid_path_fraction"]) == set(methods)
        assert all(record["evaluations"][m] > 0 for m in methods)
        for m in methods:
            gap = (record[f"energy_{m}"] - record["energy_reference"]) / abs(record["energy_reference"])
            assert record[f"relative_gap_{m}"] == pytest.approx(gap)
            assert gap > -1e-6, (state, m)  # the reference is the lowest minimum known, cross-polished
            assert 0.0 <= record["valid_path_fraction"][m] <= 1.0
        arrays, attrs = read_arrays(work / f"results/minimization/{state}.h5", MINIMIZATION_FORMAT)
        for name in ("reference",) + methods:
            assert arrays[name].shape == (8, 3) and arrays[name].dtype == np.float64
            assert np.all((arrays[name] >= 0) & (arrays[name] <= 4.0))
        assert arrays["path_energy_exact"].shape == arrays["path_energy_predicted"].shape
        assert arrays["path_energy_exact"].shape[:2] == (3, len(arrays["path_step"]))
        assert {k: attrs[k] for k in ("state", "n_particles", "box_length")} == {
            "state": state, "n_particles": 8, "box_length": 4.0}
        assert {"gamma", "temperature"} <= set(attrs)
    summary = io.read_summary(work / "results/summary.json")
    for key in ("relative_gap_latent_exact", "relative_gap_latent_functional", "relative_gap_quench_only",
                "relative_gap_grid_descent", "functional_error_per_particle", "valid_path_fraction_latent"):
        assert math.isfinite(summary[f"minimization.{key}"]), key
        assert f"minimization.{key}_heldout" in summary  # NaN: tiny.yaml holds no gamma out
    functional = io.read_json(work / "results/functional/metrics.json")
    assert functional["test"]["mae_per_particle"] == pytest.approx(summary["minimization.functional_error_per_particle"])


def test_export_holds_every_configuration(runs):
    """results/export/: one extxyz frame per configuration of each kind, read back by ASE exactly as stored."""
    from vaepipe.io.export import read_extxyz

    work, _ = runs
    export = work / "results/export"
    for state in STATES:
        samples = io.read_samples(work / f"results/samples/{state}.h5")
        frames = read_extxyz(export / f"samples/{state}.extxyz")
        assert len(frames) == len(samples.energy) == 40  # one frame per sample, in the file's order
        assert np.array_equal(np.stack([a.positions for a in frames]), samples.positions)
        assert np.array_equal([a.get_potential_energy() for a in frames], samples.energy)
        assert [a.info["chain"] for a in frames] == samples.chain.tolist()
        assert all(a.pbc.tolist() == [False] * 3 for a in frames)
        assert all(np.array_equal(a.cell.array, np.eye(3) * 4.0) for a in frames)
        assert {(a.info["state"], a.info["gamma"], a.info["temperature"]) for a in frames} == {
            (state, samples.attrs["gamma"], 1.0)}
        minima = read_extxyz(export / f"minima/{state}.extxyz")
        assert [a.info["method"] for a in minima] == ["reference", "latent_exact", "latent_functional",
                                                      "grid_descent", "quench_only"]
        record = io.read_json(work / f"results/minimization/{state}.json")
        assert [a.get_potential_energy() for a in minima[1:]] == [
            record[f"energy_{a.info['method']}"] for a in minima[1:]]
        assert len(read_extxyz(export / f"quench/{state}.extxyz")) == 10  # minimization.quench_samples
    for representation in REPRESENTATIONS:
        arrays, _ = io.read_arrays(work / f"results/reconstruction/{representation}/test.h5",
                                   io.RECONSTRUCTION_FORMAT)
        for version in ("original", "reconstructed"):
            frames = read_extxyz(export / f"reconstruction/{representation}/{version}.extxyz")
            assert len(frames) == 8 and np.array_equal(np.stack([a.positions for a in frames]), arrays[version])
        for state in STATES:
            frames = read_extxyz(export / f"generation/{representation}/{state}.extxyz")
            assert len(frames) == 50 and {a.info["representation"] for a in frames} == {representation}
    assert (work / "results/benchmarks/export/export.tsv").is_file()
    assert "samples: 2 files, 80 frames" in (work / "logs/export/export.log").read_text()


def distance_extras(work: Path) -> bool:
    """The distance VAE's Gram-matrix route is in its reconstruction metrics."""
    extras = io.read_json(work / "results/reconstruction/distance/metrics.json")["distance"]
    return extras["rmsd_exact_median"] < 1e-4 and extras["rmsd_gram_median"] > 0


def test_second_run_has_nothing_to_do(runs):
    work, config = runs
    text = _check(_snakemake(work, config, "-n"))
    assert "Nothing to be done" in text


def _planned_jobs(text: str) -> dict[str, int]:
    jobs, in_table = {}, False
    for line in text.splitlines():
        if line.startswith("Job stats"):
            in_table = True
        elif in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                jobs[parts[0]] = int(parts[1])
            elif jobs and not parts:
                break
    return jobs


def _dry_run_after_edit(runs, name: str, old: str, new: str) -> str:
    """`snakemake -n` output for the finished tiny run under its config with `old` replaced by `new`."""
    work, config = runs
    assert old in TINY
    changed = config.parent / name
    changed.write_text(TINY.replace(old, new))
    return _check(_snakemake(work, changed, "-n"))


def test_changing_sampling_keys_reruns_only_sampling(runs):
    jobs = _planned_jobs(_dry_run_after_edit(runs, "changed.yaml", "samples_per_chain: 20", "samples_per_chain: 25"))
    assert jobs.get("sample") == len(STATES)
    assert "preliminary" not in jobs


def test_changing_beta_retrains_without_resampling_or_featurizing(runs):
    text = _dry_run_after_edit(runs, "beta.yaml", "distance: {latent_dim: 3,", "distance: {beta: 0.5, latent_dim: 3,")
    jobs = _planned_jobs(text)
    assert jobs.get("train_vae") == 1 and jobs.get("encode") == 1
    assert not {"sample", "preliminary", "featurize"} & set(jobs)


def test_changing_voxel_size_refeaturizes_and_retrains_only_voxels(runs):
    jobs = _planned_jobs(_dry_run_after_edit(runs, "voxel.yaml", "voxel_size: 0.5", "voxel_size: 0.25"))
    assert jobs.get("featurize") == len(STATES) and jobs.get("train_vae") == 1
    assert not {"sample", "preliminary"} & set(jobs)


def test_figure_settings_redraw_without_resampling(runs):
    jobs = _planned_jobs(_dry_run_after_edit(runs, "bins.yaml", "density_bins: 10", "density_bins: 12"))
    assert jobs.get("density") == len(STATES)
    assert "sample" not in jobs and "preliminary" not in jobs


def test_whole_number_spelling_of_a_float_key_is_the_same_run(runs):
    assert "Nothing to be done" in _dry_run_after_edit(runs, "int.yaml", "box_length: 4.0", "box_length: 4")


def test_an_unconfigured_state_point_is_not_a_key_error(runs):
    work, config = runs
    proc = _snakemake(work, config, "results/samples/gamma2_T1.h5")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "KeyError" not in text
    assert "MissingRuleException" in text or "No rule to produce" in text
