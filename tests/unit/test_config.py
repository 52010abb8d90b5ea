"""Config schema, semantic checks and state-point names (vaepipe.config)."""

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vaepipe import config as vconfig

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "vaepipe" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def defaults():
    return vconfig.apply_schema({}, SCHEMA)


def test_config_yaml_equals_schema_defaults(defaults):
    # An override file only lists the keys it changes; the schema fills the rest, so config.yaml and the
    # schema's defaults must say the same thing -- except where config.yaml says why the demo differs.
    with open(REPO / "config.yaml") as fh:
        demo = yaml.safe_load(fh)
    assert demo["features"]["voxel"]["method"] == "gaussian"  # the seed's count grids collapse a small VAE
    assert defaults["features"]["voxel"]["method"] == "count"
    demo["features"]["voxel"]["method"] = "count"
    # The demo holds one gamma out of training for the anomaly test; by default nothing is held out.
    assert demo["analysis"]["heldout_gamma"] == [1.5] and defaults["analysis"]["heldout_gamma"] == []
    demo["analysis"]["heldout_gamma"] = []
    # The demo minimizes at one gamma it never sampled (the transfer test); by default there is none.
    assert demo["minimization"]["transfer_gamma"] == [0.75] and defaults["minimization"]["transfer_gamma"] == []
    demo["minimization"]["transfer_gamma"] = []
    assert demo == defaults


def _walk(schema, path=""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}" if path else name)


def test_every_key_has_description_default_and_no_extras():
    with open(SCHEMA) as fh:
        schema = yaml.safe_load(fh)
    keys = list(_walk(schema))[1:]
    assert len(keys) > 20
    for key, sub in keys:
        assert sub.get("description"), f"{key} lacks a description"
        assert "default" in sub, f"{key} lacks a default"
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, f"{key} accepts unknown keys"
    assert schema["additionalProperties"] is False


def test_defaults_fill_in_partial_config():
    cfg = vconfig.apply_schema({"system": {"n_particles": 12}, "state_points": {"gamma": [0.3]}}, SCHEMA)
    assert cfg["system"]["n_particles"] == 12
    assert cfg["system"]["box_length"] == 5.0
    assert cfg["state_points"] == {"gamma": [0.3], "temperature": [1.0]}
    assert cfg["sampling"]["mode"] == "continuous"
    # filling defaults must not leak one config's values into the next one
    again = vconfig.apply_schema({}, SCHEMA)
    assert again["system"]["n_particles"] == 30


def test_default_config_passes_checks(defaults):
    assert vconfig.check_config(copy.deepcopy(defaults)) == defaults


def _with(defaults, **changes):
    cfg = copy.deepcopy(defaults)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    return cfg


SEMANTIC_ERRORS = [
    ({"system__n_particles": 5000}, "system.n_particles"),
    ({"system__boundary": "periodic", "system__cutoff": None, "state_points__gamma": [0.0]}, "system.cutoff"),
    ({"system__boundary": "periodic", "system__cutoff": 3.0, "state_points__gamma": [0.0]}, "system.cutoff"),
    ({"system__boundary": "periodic", "system__cutoff": 2.5}, "state_points.gamma"),
    ({"system__boundary": "slab", "system__cutoff": None}, "system.cutoff"),
    ({"system__boundary": "slab", "system__cutoff": 2.5, "system__tail_correction": True}, "system.tail_correction"),
    ({"system__tail_correction": True}, "system.tail_correction"),
    ({"system__tail_correction": True, "system__cutoff": 2.0}, "system.tail_correction"),
    ({"state_points__gamma": [0.5, 0.25, 0.5]}, "state_points.gamma"),
    ({"state_points__gamma": [1, 1.0]}, "state_points.gamma"),
    ({"state_points__temperature": [1.0, 2.0, 1.0]}, "state_points.temperature"),
    ({"state_points__gamma": [math.nan]}, "state_points.gamma"),
    ({"state_points__temperature": [math.inf]}, "state_points.temperature"),
    ({"system__box_length": math.inf}, "system.box_length"),
    ({"preliminary__initial_step_size": 4.0}, "preliminary.initial_step_size"),
    ({"sampling__samples_per_chain": 10**9}, "sampling.samples_per_chain"),
]


@pytest.mark.parametrize("changes, key", SEMANTIC_ERRORS)
def test_semantic_errors_name_the_key(defaults, changes, key):
    with pytest.raises(ValueError, match=rf"config key {key}\b.*fix:"):
        vconfig.check_config(_with(defaults, **changes))


def test_slab_with_gravity_config_is_accepted(defaults):
    cfg = _with(defaults, system__boundary="slab", system__cutoff=2.5)
    assert vconfig.check_config(cfg) is cfg


def test_periodic_bulk_config_is_accepted(defaults):
    cfg = _with(defaults, system__boundary="periodic", system__cutoff=2.5, system__tail_correction=True,
                state_points__gamma=[0.0])
    assert vconfig.check_config(cfg) is cfg


SCHEMA_ERRORS = [
    ({"system": {"n_particle": 30}}, "system.n_particle", "did you mean 'n_particles'"),
    ({"sampling": {"mode": "sometimes"}}, "sampling.mode", "sometimes"),
    ({"system": {"dim": 4}}, "system.dim", "4"),
    ({"state_points": {"gamma": [0.5, -1.0]}}, "state_points.gamma.1", "-1.0"),
    ({"state_points": {"temperature": [0.0]}}, "state_points.temperature.0", "0.0"),
    ({"state_points": {"gamma": []}}, "state_points.gamma", "[]"),
    ({"preliminary": {"target_acceptance": 1.5}}, "preliminary.target_acceptance", "1.5"),
    ({"seed": -3}, "seed", "-3"),
    ({"seed": 1.5}, "seed", "1.5"),
    ({"sampling": {"chains": True}}, "sampling.chains", "True"),
    ({"extra": 1}, "extra", "at the top level"),
    ({"state_points": {"gamma": 0.5}}, "state_points.gamma", "a list"),
    ({"features": {"voxel": {"method": "gauss"}}}, "features.voxel.method", "one of ['count', 'gaussian']"),
]


@pytest.mark.parametrize("raw, key, value", SCHEMA_ERRORS)
def test_schema_errors_name_the_key(raw, key, value):
    """One line each, in the project's own words (not jsonschema's dump): the key, the value, what is expected
    and the fix."""
    with pytest.raises(ValueError, match=rf"^config key {re.escape(key)}(=| is unknown).*; fix: ") as info:
        vconfig.apply_schema(raw, SCHEMA)
    assert value in str(info.value) and "\n" not in str(info.value)


def test_load_config_reads_override_file(tmp_path):
    path = tmp_path / "over.yaml"
    path.write_text("seed: 7\nstate_points:\n  gamma: [0, 2]\nsampling:\n  chains: 2\n")
    cfg = vconfig.load_config(path, SCHEMA)
    assert cfg["seed"] == 7 and cfg["sampling"]["chains"] == 2 and cfg["sampling"]["samples_per_chain"] == 250
    assert list(vconfig.state_points(cfg)) == ["gamma0_T1", "gamma2_T1"]
    path.write_text("system:\n  n_particles: 5000\n")
    with pytest.raises(ValueError, match="config key system.n_particles=5000 is invalid"):
        vconfig.load_config(path, SCHEMA)


def test_state_points_grid_and_names(defaults):
    cfg = copy.deepcopy(defaults)
    cfg["state_points"] = {"gamma": [0.0, 0.25, 1.0], "temperature": [1.0, 1.5]}
    points = vconfig.state_points(cfg)
    assert list(points) == ["gamma0_T1", "gamma0_T1.5", "gamma0.25_T1", "gamma0.25_T1.5", "gamma1_T1",
                            "gamma1_T1.5"]
    assert points["gamma0.25_T1.5"] == {"gamma": 0.25, "temperature": 1.5}


@pytest.mark.parametrize("value, text", [(0.0, "0"), (-0.0, "0"), (1.0, "1"), (0.5, "0.5"), (1e-5, "1e-05"),
                                         (1e20, "1e20"), (2.5, "2.5"), (3, "3")])
def test_format_number(value, text):
    assert vconfig.format_number(value) == text


def _awkward_floats():
    rng = np.random.default_rng(12345)
    # every decade from subnormal to huge, random mantissas, plus round and nearly-round values
    values = [float(m) * 10.0**e for e in range(-310, 300, 7) for m in rng.uniform(1, 10, 3)]
    values += [0.0, -0.0, 1.0, 0.1, 0.2 + 0.1, 1 / 3, 2.0**-1074, 1.7976931348623157e308, 1e16, 123456789.0]
    return [v for v in values if math.isfinite(v) and v >= 0]


def test_state_names_round_trip_and_are_filename_safe():
    values = _awkward_floats()
    assert len(values) > 250
    for gamma, temperature in zip(values, values[::-1]):
        temperature = temperature or 1.0
        name = vconfig.state_name(gamma, temperature)
        assert vconfig.parse_state_name(name) == {"gamma": gamma + 0.0, "temperature": temperature}
        assert re.fullmatch(vconfig.STATE_NAME_PATTERN, name)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


@pytest.mark.parametrize("name", ["gamma0.50_T1", "gamma.5_T1", "gamma0.5_T1.0", "gamma0.5", "gamma-1_T1",
                                  "gamma0.5_T1/x", "gamma1e+20_T1"])
def test_non_canonical_names_are_rejected(name):
    with pytest.raises(ValueError, match="state-point name"):
        vconfig.parse_state_name(name)


def _snakemake_dry_run(workdir: Path, *configfiles: Path) -> subprocess.CompletedProcess:
    extra = [a for path in configfiles for a in ("--configfile", str(path))]
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(workdir), *extra], capture_output=True, text=True, timeout=300)


def _error_lines(text: str) -> list[str]:
    """The lines of a failed parse that are not Snakemake's preamble nor its one-line traceback."""
    preamble = ("Using workflow", "Creating specified working directory", "  File ")
    return [line for line in text.splitlines() if line.strip() and not line.startswith(preamble)]


@pytest.mark.parametrize("override, key", [
    ("system:\n  n_particles: 5000\n", "system.n_particles"),
    ("system:\n  n_particle: 30\n", "system.n_particle"),
    ("system:\n  boundary: periodic\n  cutoff: 2.0\n", "state_points.gamma"),
    ("features:\n  voxel: {voxel_size: 0.005}\n", "features.voxel.voxel_size"),
    ("analysis: {knn_neighbors: 100000}\n", "analysis.knn_neighbors"),
    ("preliminary: {sweeps: 1e12}\n", "preliminary.sweeps"),
])
def test_bad_config_stops_snakemake_before_any_job(tmp_path, override, key):
    (tmp_path / "bad.yaml").write_text(override)
    proc = _snakemake_dry_run(tmp_path / "work", tmp_path / "bad.yaml")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Job stats" not in text  # failed while parsing, no job was even planned
    assert not (tmp_path / "work" / "results").exists()
    # Snakemake's header line, then the project's one-line message: no jsonschema dump
    header, message = _error_lines(text)
    assert header.startswith("WorkflowError in file"), text
    assert message.startswith(f"config key {key}") and "; fix: " in message, text


@pytest.mark.parametrize("content, problem", [
    ("", "config.yaml is empty"),
    ("- 1\n- 2\n", "its top level is a list"),
    ("seed: 3\nsystem:\n  n_particles: [30\n", "config.yaml, line 4, column 1"),
])
def test_broken_config_yaml_names_the_file_and_line(tmp_path, content, problem):
    """Snakemake's own loader says only "not valid JSON or YAML" (it reads the files given with --configfile
    before the workflow starts: `python -m vaepipe.plan FILE` gives their line); the workflow reads config.yaml
    first, for the line."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(content)
    proc = _snakemake_dry_run(work)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not (work / "results").exists(), text
    header, message = _error_lines(text)
    assert problem in message and "; fix: " in message, text


def test_whole_numbers_in_float_keys_become_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("system: {box_length: 5}\nstate_points: {gamma: [0, 1], temperature: [1]}\nseed: 3\n")
    cfg = vconfig.load_config(path)
    assert repr(cfg["system"]["box_length"]) == "5.0"
    assert [repr(g) for g in cfg["state_points"]["gamma"]] == ["0.0", "1.0"]
    assert isinstance(cfg["seed"], int) and isinstance(cfg["system"]["n_particles"], int)
