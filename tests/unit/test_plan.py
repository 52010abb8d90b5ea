"""Every bad config the operations issue tried is refused before any job runs (vaepipe.config + vaepipe.plan), in
one line with the key, the value, what is expected and the fix; and the good configs pass."""

import copy
import re
from pathlib import Path

import pytest
import yaml

from vaepipe import config as vconfig
from vaepipe import plan

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    with open(REPO / "config.yaml") as fh:
        return yaml.safe_load(fh)


def _prepared(base: dict, override: str) -> dict:
    return plan._merge(copy.deepcopy(base), yaml.safe_load(override))


# (override of the demo config, key named, a phrase of what is expected)
BAD = [
    ("vae: {validation_fraction: 0.6, test_fraction: 0.5}", "vae.validation_fraction", "no sample is left"),
    ("features: {voxel: {voxel_size: 0.005}}", "features.voxel.voxel_size", "over the cap of 256,000 MB"),
    ("vae: {voxel: {filters: [80, 160, 320, 80, 160, 320, 80, 160, 320, 80]}}", "vae.voxel.filters",
     "at most 4 blocks for a side of 16"),
    ("vae: {voxel: {filters: " + str([8, 16, 32] * 10) + "}}", "vae.voxel.filters", "at most 4 blocks"),
    ("vae: {voxel: {batch_size: 100000000}}", "vae.voxel.batch_size", "at most the 3200 training samples"),
    ("reconstruction: {learned: {batch_size: 5000}}", "reconstruction.learned.batch_size", "3200 training"),
    ("preliminary: {sweeps: 1e12}", "preliminary.sweeps", "trial moves per preliminary job"),
    ("preliminary: {sweeps: 1000000000000}", "preliminary.sweeps", "trial moves per preliminary job"),
    ("preliminary: {sweeps: 10000000000, tune_sweeps: 1, observables: [energy]}\nsystem: {n_particles: 2}",
     "preliminary.sweeps", "the preliminary job would ask for 481,000 MB"),
    ("analysis: {knn_neighbors: 100000}", "analysis.knn_neighbors", "at most the 3200 latent means"),
    ("reconstruction: {min_distance: 40}", "reconstruction.min_distance", "at most 2.83 sigma"),
    ("vae: {particles: {min_distance: 40}}", "vae.particles.min_distance", "at most 2.83 sigma"),
    ("vae: {particles: {min_distance: 0.5}}", "vae.particles.min_distance", "at least reconstruction.min_distance"),
    ("sampling: {chains: 1, samples_per_chain: 5}", "sampling.samples_per_chain", "give the validation split none"),
    ("sampling: {chains: 1, samples_per_chain: 9}\nvae: {validation_fraction: 0, test_fraction: 0.01}",
     "sampling.samples_per_chain", "give the test split none"),
    ("state_points: {gamma: [1e-5, '0.5x']}", "state_points.gamma.1", "a number"),
]


@pytest.mark.parametrize("override, key, expected", BAD, ids=[row[1] + f"-{i}" for i, row in enumerate(BAD)])
def test_bad_inputs_are_refused_with_key_value_expected_and_fix(demo, override, key, expected):
    with pytest.raises(ValueError) as info:
        plan.check_plan(vconfig.prepare_config(_prepared(demo, override)))
    message = str(info.value)
    assert re.match(rf"config key {re.escape(key)}=\S", message), message
    assert expected in message and "; fix: " in message and "\n" not in message, message


@pytest.mark.parametrize("path", ["config.yaml", "tests/data/tiny.yaml", "config/paper.yaml", "config/cluster.yaml"])
def test_the_projects_configs_pass(path):
    cfg = vconfig.load_config(REPO / path)
    assert plan.check_plan(cfg) is cfg


def test_yaml_1_1_exponents_are_numbers(demo):
    """PyYAML (YAML 1.1) reads 1e-5 as a string; the config reads it as YAML 1.2 does, the same config as
    1.0e-5, and a whole number in float syntax given for an integer key is that integer."""
    short = vconfig.prepare_config(_prepared(demo, "state_points: {gamma: [0, 1e-5]}\npreliminary: {sweeps: 3e4}"))
    long = vconfig.prepare_config(_prepared(demo, "state_points: {gamma: [0.0, 1.0e-5]}\npreliminary: "
                                                  "{sweeps: 30000}"))
    assert yaml.safe_load("x: 1e-5")["x"] == "1e-5"  # what YAML 1.1 makes of it
    assert short == long
    assert short["state_points"]["gamma"] == [0.0, 1e-5] and repr(short["preliminary"]["sweeps"]) == "30000"
    assert list(vconfig.state_points(short)) == ["gamma0_T1", "gamma1e-05_T1"]


def test_split_counts_are_those_the_training_split_deals(demo):
    cfg = vconfig.prepare_config(copy.deepcopy(demo))
    assert plan.split_counts(cfg) == {"train": 800, "validation": 100, "test": 100}
    tiny = vconfig.load_config(REPO / "tests" / "data" / "tiny.yaml")
    assert plan.split_counts(tiny) == {"train": 32, "validation": 4, "test": 4}


def test_every_memory_request_is_under_the_cap_for_the_paper_config():
    cfg = vconfig.load_config(REPO / "config" / "paper.yaml")
    requests = [plan.sample_mem_mb(cfg), plan.preliminary_mem_mb(cfg)]
    requests += [plan.featurize_mem_mb(cfg, r) for r in ("voxel", "distance", "coordinates", "particles")]
    requests += [plan.learning_mem_mb(cfg, r, s) for r in cfg["vae"]["representations"] for s in ("never", "auto")]
    assert max(requests) <= plan.MAX_JOB_MEMORY_MB
    assert plan.learning_mem_mb(cfg, "voxel", "auto") <= 8000  # streamed training (the scale issue's bound)


def test_the_plan_command_checks_merged_files(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: 3\nsystem:\n  n_particles: [30\n")
    assert plan.main([str(REPO / "config.yaml"), str(broken)]) == 1
    assert "broken.yaml, line 4, column 1" in capsys.readouterr().out
    knn = tmp_path / "knn.yaml"
    knn.write_text("analysis: {knn_neighbors: 100000}\n")
    assert plan.main([str(REPO / "config.yaml"), str(knn)]) == 1
    assert "config key analysis.knn_neighbors=100000" in capsys.readouterr().out
    assert plan.main([str(REPO / "config.yaml")]) == 0
    assert "ok: 5 state points, 1000 samples each (train/validation/test 800/100/100)" in capsys.readouterr().out
