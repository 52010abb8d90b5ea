"""config/cluster.yaml through the whole chain: 13 particles at T = 0.4, gamma = 0, in the demo's box. The reference
search and the latent route (A, after its final quench) must reach the Cambridge Cluster Database's LJ13 minimum,
-44.326801 eps (../shared/reference/lj_cluster_minima.csv, copied into tests/data)."""

import subprocess
import sys

import pytest

from conftest import REPO, checkout
from vaepipe import io
from vaepipe.io.arrays import REFERENCE_FORMAT, read_arrays

LJ13 = -44.326801
STATE = "gamma0_T0.4"


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    work = checkout(tmp_path_factory.mktemp("cluster") / "work")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(work / "Snakefile"), "--directory", str(work),
           "--configfile", str(REPO / "config.yaml"), str(REPO / "config" / "cluster.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return work


@pytest.mark.statistical
def test_the_cluster_chain_reaches_the_lj13_minimum(cluster_run):
    record = io.read_json(cluster_run / f"results/minimization/{STATE}.json")
    assert record["n_particles"] == 13 and record["gamma"] == 0.0 and record["temperature"] == 0.4
    assert record["reference_source"] == "ccd" and record["energy_reference"] == pytest.approx(LJ13, abs=1e-6)
    _, attrs = read_arrays(cluster_run / f"results/reference/{STATE}.h5", REFERENCE_FORMAT)
    assert attrs["ccd_reached"] and attrs["energy"] == pytest.approx(LJ13, abs=1e-4)
    # the latent route, exact energy of the particle VAE's decoded configurations, then the final quench
    assert record["energy_latent_exact"] == pytest.approx(LJ13, abs=1e-4)
    assert record["valid_path_fraction"]["latent_exact"] >= 0.99
    summary = io.read_summary(cluster_run / "results/summary.json")
    assert abs(summary["minimization.relative_gap_latent_exact"]) < 1e-5
