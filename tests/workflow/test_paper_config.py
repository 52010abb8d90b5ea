"""config/paper.yaml, the seed's scale for a cluster: valid, and planned by Snakemake as intended (dry runs)."""

import re
import subprocess
import sys
from pathlib import Path

from vaepipe.config import heldout_state_points, load_config, state_points
from vaepipe.representations import REPRESENTATIONS, feature_shape

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "config" / "paper.yaml"


def _merged() -> dict:
    """config.yaml with paper.yaml on top, as `snakemake --configfile config/paper.yaml` merges them."""
    import yaml

    def merge(base, override):
        for key, value in override.items():
            base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
        return base

    return merge(yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(PAPER.read_text()))


def test_paper_config_reaches_the_seed_scale(tmp_path):
    import yaml

    merged = _merged()

    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(merged))
    config = load_config(path)  # schema + semantic checks
    trained, heldout = state_points(config), heldout_state_points(config)
    assert len(trained) >= 6 and len(heldout) >= 1  # more gammas than the demo's 4
    assert config["sampling"]["chains"] * config["sampling"]["samples_per_chain"] >= 2000  # several thousand
    shape = feature_shape("voxel", config["features"]["voxel"], 30, 3, config["system"]["box_length"])
    assert shape == (50, 50, 50)  # h = 0.1 sigma
    assert 50 <= config["vae"]["distance"]["latent_dim"] <= 100


def _dry_run(work: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(REPO / "config.yaml"), str(PAPER), "-n", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    return text


def _job_counts(text: str) -> dict[str, int]:
    table = text[text.index("job "):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^([a-z_]+)\s+(\d+)$", table, re.MULTILINE)}


def test_paper_config_dry_run_plans_every_stage(tmp_path):
    counts = _job_counts(_dry_run(tmp_path, "--cores", "8"))
    states = 9  # 8 trained gammas + 1 held out, at one temperature
    assert counts["preliminary"] == counts["sample"] == counts["density"] == states
    # every representation is featurized (coordinates too: cheap, and there for a user who trains it)
    assert counts["featurize"] == len(REPRESENTATIONS) * states == 4 * states
    for rule in ("train_vae", "encode", "latent_analysis", "anomaly", "reconstruct", "generate"):
        assert counts[rule] == 3, rule  # voxel, distance, particles
    assert counts["landscape"] == counts["summary"] == 1
    # minimization: quench every sampled state point; reference and minimize every trained, held-out and
    # transfer state point (8 + 1 + 1); one functional, one transfer
    assert counts["quench"] == states and counts["reference_minimum"] == counts["minimize"] == states + 1
    assert counts["train_functional"] == counts["functional_transfer"] == 1


def test_paper_config_dry_run_through_the_slurm_profile(tmp_path):
    import snakemake_executor_plugin_slurm  # noqa: F401  (a dependency: its absence is a failure, not a skip)

    text = _dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile", "none")
    assert _job_counts(text)["sample"] == 9
    # GPUs follow the config: the paper config asks for vae.gpus: 1, which the plugin turns into --gpus=1
    blocks = re.split(r"\n(?=rule \w+:)", text)
    train = [b for b in blocks if b.startswith("rule train_vae:")]
    assert len(train) == 3 and all(re.search(r"resources: .*\bgpu=1\b", b) for b in train), train[:1]
    # the energy functional trains like a VAE: its training and fine-tuning jobs ask for the same GPUs
    learning = ("rule train_vae:", "rule train_functional:", "rule functional_transfer:")
    functional = [b for b in blocks if b.startswith(learning[1:])]
    assert len(functional) == 2 and all(re.search(r"resources: .*\bgpu=1\b", b) for b in functional)
    assert not any(re.search(r"\bgpu=[1-9]", b) for b in blocks if not b.startswith(learning))
    # Training and encoding stream the 50^3 grids (18 GB of them) from disk: the jobs ask for what one window,
    # the slices and a batch's activations need, not for the data set (issue 14: <= 8 GB).
    memory = {re.search(r"wildcards: representation=(\w+)", b)[1]: int(re.search(r"\bmem_mb=(\d+)", b)[1])
              for b in blocks if b.startswith(("rule train_vae:", "rule encode:"))}
    assert memory and max(memory.values()) <= 8000, memory


def test_the_slurm_profile_forces_no_gpu(tmp_path):
    """The demo config (vae.gpus: 0) through the SLURM profile asks for no GPU: the profile runs on clusters
    without any (before, its set-resources forced gpu: 1, which sbatch refuses there)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(REPO / "config.yaml"), "-n", "--profile", str(REPO / "profiles" / "slurm"),
           "--workflow-profile", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    train = [b for b in re.split(r"\n(?=rule \w+:)", text) if b.startswith("rule train_vae:")]
    assert len(train) == 3 and all(re.search(r"resources: .*\bgpu=0\b", b) for b in train), train[:1]
