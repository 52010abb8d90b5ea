"""The quality bars of the issues, on the default demo config (config.yaml), from one real run of the whole
pipeline in a temporary directory (sampling, featurization, training, reconstruction, generation, analysis), and
the HTML report built from it.

The headline representation (analysis.representation: the particle VAE) against the physically-valid-learning
targets (README, "Physically valid learning"), each beside the reference that bounds it:

- reconstruction: valid fraction >= 0.95, permutation-aware RMSD <= 0.15 sigma, median |dU|/N <= 0.25 eps, all
  as decoded; the RMSD well below that of the nearest training configuration;
- generation: valid fraction >= 0.9 as decoded; new configurations (their nearest training configuration about
  as far as a Monte Carlo test configuration's); the energy W1 / std targets (0.5 as decoded, 0.2 after 10
  sweeps) are not reached (gamma = 1 alone misses the first) and are held at today's level, with the targets
  as strict expected failures;
- latent: gamma k-NN accuracy >= 0.9 x its ceiling (sum(z) alone);
- anomaly: the model's overlap AUC >= 0.99 beside the trivial detector; held-out gamma within 0.05 of its ceiling;
  tilted layers invisible to the energy and sum(z) (AUC 0.5);
- the older bars: both convolutional VAEs beat half the mean predictor, random configurations are anomalous;
- minimization (issue 13): the CCD minimum at gamma = 0, consistent references, valid paths of route A, today's
  gaps and functional error held, fine-tuning beating training from scratch; the issue's accuracy targets as
  strict expected failures.
"""

import math
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import demo_command

from vaepipe import io
from vaepipe.io import SUMMARY_KEYS

REPO = Path(__file__).resolve().parents[2]
MAX_ERROR_RATIO = 0.5
MIN_AUC_UNIFORM = 0.95


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*demo_command(work), *args], capture_output=True, text=True, timeout=3600)


@pytest.fixture(scope="module")
def demo(demo_run):
    """The finished demo (tests/conftest.py starts it behind the other tests)."""
    return demo_run


@pytest.fixture(scope="module")
def demo_metrics(demo):
    return {r: io.read_json(demo / f"results/models/{r}/metrics.json")
            for r in ("voxel", "distance", "particles")}


@pytest.fixture(scope="module")
def summary(demo):
    s = io.read_summary(demo / "results/summary.json")
    print({k: round(v, 4) for k, v in s.items() if isinstance(v, float) and k.count(".") == 1})
    return s


@pytest.mark.training
@pytest.mark.parametrize("representation", ["voxel", "distance"])
def test_conv_vaes_beat_half_the_mean_predictor(demo_metrics, representation):
    m = demo_metrics[representation]
    print(f"{representation}: test error {m['recon_error']:.4f}, mean predictor {m['baseline_error']:.4f}, "
          f"ratio {m['error_ratio']:.3f}, active units {m['active_units']}/{m['latent_dim']}")
    assert m["error_ratio"] <= MAX_ERROR_RATIO
    # posterior collapse would leave (almost) no latent dimension in use
    assert m["active_units"] >= m["latent_dim"] // 2
    assert m["num_samples"] == 400  # 10% of 1000 samples at each of 4 trained state points


@pytest.mark.training
def test_summary_holds_every_contract_key_as_a_float(summary):
    for key in SUMMARY_KEYS:
        assert isinstance(summary[key], float), key
    # With a held-out gamma and every representation trained, every headline quantity applies.
    assert [k for k in SUMMARY_KEYS if math.isnan(summary[k])] == []


@pytest.mark.training
def test_reconstructions_are_physical(summary):
    assert summary["reconstruction.valid_fraction"] >= 0.95
    assert summary["reconstruction.rmsd_anchored_median"] <= 0.15
    assert summary["reconstruction.energy_abs_error_per_particle_median"] <= 0.25
    # far better than the nearest training configuration, which is better than two random ones
    assert summary["reconstruction.rmsd_anchored_median"] < 0.5 * summary["reconstruction.rmsd_nearest_training_median"]
    assert summary["reconstruction.rmsd_nearest_training_median"] < summary["reconstruction.rmsd_random_pair_median"]


@pytest.mark.training
def test_generated_configurations_are_valid_and_new(summary, demo):
    assert summary["generation.valid_fraction"] >= 0.9
    # new, not copies: as far from the training set as Monte Carlo's own test configurations are
    assert summary["generation.nearest_training_rmsd_median"] >= 0.9 * summary[
        "generation.nearest_training_rmsd_median_mc_test"]
    # the contract file of every state point, S >= 500
    for state in ("gamma0_T1", "gamma0.25_T1", "gamma0.5_T1", "gamma1_T1"):
        arrays, attrs = io.read_arrays(demo / f"results/generation/particles/{state}.h5", io.GENERATED_FORMAT)
        assert arrays["positions"].shape == (500, 30, 3) and attrs["state"] == state


@pytest.mark.training
def test_generated_energies_hold_todays_level(summary):
    # README, "What limits these numbers": gamma = 1's generated layer is too tall and strained (W1 / std 1.5 as
    # decoded, 1.2 after 10 sweeps; the other state points 0.26-0.32). Today's means are 0.60-0.66 and 0.50-0.52
    # (Intel AVX-512 and AMD AVX2); these bars keep them from getting worse.
    assert summary["generation.energy_w1_over_std"] <= 0.9
    assert summary["generation.energy_w1_over_std_relaxed10"] <= 0.75
    # the metric's own noise floor (Monte Carlo training against test configurations) is well below both
    assert summary["generation.energy_w1_over_std_mc_train"] < 0.3


@pytest.mark.training
@pytest.mark.xfail(strict=True, reason="target not reached (README, 'What limits these numbers'): three state "
                   "points meet it, gamma = 1's generated layer is too tall (mean height +0.05 sigma) and strained, "
                   "W1 / std 1.5 there, 0.60 on average")
def test_generated_energy_target_as_decoded(summary):
    assert summary["generation.energy_w1_over_std"] <= 0.5


@pytest.mark.training
@pytest.mark.xfail(strict=True, reason="target not reached (README, 'What limits these numbers'): 10 sweeps leave "
                   "gamma <= 0.5 at 0.27-0.29 and cannot lower gamma = 1's too-tall layer (1.2)")
def test_generated_energy_target_after_ten_sweeps(summary):
    assert summary["generation.energy_w1_over_std_relaxed10"] <= 0.2


@pytest.mark.training
def test_latent_clusters_by_gamma_near_its_ceiling(summary):
    assert summary["latent.gamma_knn_accuracy"] >= 0.9 * summary["latent.gamma_knn_accuracy_ceiling"]
    assert summary["latent.gamma_knn_accuracy_ceiling"] > 0.9  # sum(z) does separate the demo's gammas


@pytest.mark.training
def test_anomalies_against_their_physics_references(summary):
    assert summary["anomaly.auc_overlap"] >= 0.99 and summary["anomaly.auc_overlap_trivial"] >= 0.99
    assert summary["anomaly.auc_uniform"] >= MIN_AUC_UNIFORM
    assert summary["anomaly.auc_heldout_gamma"] >= summary["anomaly.auc_heldout_gamma_ceiling"] - 0.05
    # tilted layers keep the energy and sum(z): the references are at chance, by construction
    assert summary["anomaly.auc_tilted_trivial"] == pytest.approx(0.5, abs=0.02)


MINIMIZED = ("gamma0_T1", "gamma0.25_T1", "gamma0.5_T1", "gamma0.75_T1", "gamma1_T1", "gamma1.5_T1")


@pytest.mark.training
def test_minimization_reaches_what_it_can_and_holds_todays_level(summary, demo):
    """Issue 13 on the demo: the exact reference at gamma = 0 is the CCD's LJ30; the references are consistent
    (E_min(gamma) nondecreasing and concave, which cross-polishing enforces); route A's paths are valid
    configurations throughout. Today's levels (README, "Minimization"): route A within 1.4 % of the reference at
    the trained gammas and 5 % at the others (AMD), the functional's error 0.10 eps per particle."""
    from vaepipe.io.arrays import REFERENCE_FORMAT, read_arrays

    _, attrs = read_arrays(demo / "results/reference/gamma0_T1.h5", REFERENCE_FORMAT)
    assert attrs["ccd_reached"] and attrs["energy"] == pytest.approx(-128.286571, abs=1e-4)
    records = {s: io.read_json(demo / f"results/minimization/{s}.json") for s in MINIMIZED}
    points = sorted((r["gamma"], r["energy_reference"]) for r in records.values())
    energies = [e for _, e in points]
    assert all(b >= a - 1e-9 for a, b in zip(energies, energies[1:])), points
    slopes = [(e2 - e1) / (g2 - g1) for (g1, e1), (g2, e2) in zip(points, points[1:])]
    assert all(b <= a + 1e-9 for a, b in zip(slopes, slopes[1:])), slopes
    assert all(r["valid_path_fraction"]["latent_exact"] >= 0.99 for r in records.values())
    assert summary["minimization.relative_gap_latent_exact"] <= 0.03
    assert summary["minimization.relative_gap_latent_exact_heldout"] <= 0.10
    assert summary["minimization.functional_error_per_particle"] <= 0.15
    # fine-tuning the functional at the held-out gamma beats training from scratch on the same samples
    curve = io.read_json(demo / "results/functional/transfer.json")["curve"]
    for fraction in (0.1, 0.3, 1.0):
        by_mode = {r["mode"]: r["mae_per_particle"] for r in curve if r["fraction"] == fraction}
        assert by_mode["fine_tune"] < by_mode["scratch"], fraction


@pytest.mark.training
@pytest.mark.xfail(strict=True, reason="target not reached (README, 'Minimization'): the decoders cannot draw the "
                   "minima (A ends 0.6-7 % above them), and B exploits the learned functional")
def test_latent_descent_reaches_the_reference_within_half_a_percent(summary):
    assert min(summary["minimization.relative_gap_latent_exact"],
               summary["minimization.relative_gap_latent_functional"]) <= 0.005


@pytest.mark.training
@pytest.mark.xfail(strict=True, reason="target not reached (README, 'Minimization'): the 0.5 sigma blur hides the "
                   "pair distances the LJ energy depends on; 0.10 eps per particle")
def test_functional_error_target(summary):
    assert summary["minimization.functional_error_per_particle"] <= 0.05


@pytest.mark.training
@pytest.mark.xfail(strict=True, reason="target not reached (README, 'Minimization'): route B's fitted "
                   "configurations overlap within tens of steps (6-13 % valid)")
def test_latent_paths_are_valid(summary):
    assert summary["minimization.valid_path_fraction_latent"] >= 0.99


@pytest.mark.training
def test_report_holds_every_figure_and_the_summary(demo):
    figures = Counter(p.name for p in (demo / "results").rglob("*.png"))
    # 5 state points x 2; per representation: model 2, reconstruction 3, generation 2, latent 1, anomaly 1;
    # the landscape 1 and the latent-size curve 1; the functional's parity and transfer 2, and one minimization
    # figure per minimized state point (4 trained, 1 held out, 1 transfer)
    assert sum(figures.values()) == 10 + 3 * 9 + 2 + 2 + 6
    proc = _snakemake(demo, "--report", "report.zip")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    with zipfile.ZipFile(demo / "report.zip") as archive:
        names = archive.namelist()
    # The archive keeps each file under its own folder by base name: every figure, and the summary table.
    assert sum(n.endswith(".png") for n in names) == sum(figures.values())
    assert any(n.endswith("/summary.tsv") for n in names) and any(n.endswith("report.html") for n in names)
    # The self-contained HTML report that users open.
    proc = _snakemake(demo, "--report", "report.html")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    html = (demo / "report.html").read_text()
    for name in list(figures) + ["summary.tsv"]:
        assert name in html, name
