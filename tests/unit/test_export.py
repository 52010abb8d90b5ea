"""Extended XYZ export (vaepipe.io.export, vaepipe.stages.export): what ASE reads back is what was written,
coordinates and energies to the last bit, with the box as the cell and pbc from the boundary."""

import io as textio
import json
from pathlib import Path

import numpy as np
import pytest

ase_io = pytest.importorskip("ase.io")

from vaepipe import io  # noqa: E402
from vaepipe.io.arrays import (GENERATED_FORMAT, MINIMIZATION_FORMAT, QUENCH_FORMAT,  # noqa: E402
                               RECONSTRUCTION_FORMAT, write_arrays)
from vaepipe.io.export import EXTXYZ_FORMAT, pbc_of, read_extxyz, write_extxyz  # noqa: E402
from vaepipe.mc import Sampler  # noqa: E402
from vaepipe.stages import write_outputs  # noqa: E402
from vaepipe.stages.export import MINIMA_METHODS, export  # noqa: E402

BOX = 4.0


def _hard_coordinates(num=7, n=5, dim=3, seed=0):
    """Coordinates that no fixed number of decimals keeps: full-precision draws, the walls and their neighbours,
    tiny and subnormal numbers."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, BOX, size=(num, n, dim))
    x[0, 0, :] = [np.nextafter(BOX, 0.0), np.nextafter(0.0, 1.0), BOX][:dim]
    x[0, 1, :] = [1e-300, 1.0 / 3.0, 0.1][:dim]
    x[1, 0, :] = [np.pi, 2.0**-40, 0.0][:dim]
    return x


def _read(path):
    frames = ase_io.read(path, index=":")
    return frames, np.stack([a.positions for a in frames]), np.array([a.get_potential_energy() for a in frames])


# --------------------------------------------------------------------------- the writer


def test_ase_writer_alone_would_round_coordinates():
    """Why the writer formats the columns itself: ASE's extxyz writer keeps 8 decimals."""
    from ase import Atoms

    x = _hard_coordinates()[0]
    buffer = textio.StringIO()
    ase_io.write(buffer, Atoms(["X"] * len(x), positions=x, cell=np.eye(3) * BOX), format="extxyz")
    buffer.seek(0)
    assert not np.array_equal(ase_io.read(buffer, format="extxyz").positions, x)


@pytest.mark.parametrize("boundary, pbc", [("reflect", [False] * 3), ("periodic", [True] * 3),
                                           ("slab", [True, True, False])])
def test_round_trip_is_exact_with_cell_pbc_and_energies(tmp_path, boundary, pbc):
    x = _hard_coordinates()
    energy = np.array([-12.345678901234567, 1e-17, 3.0, -0.1, 2.0**60, -7.0 / 3.0, 1e300])
    chain = np.array([0, 0, 1, 1, 2, 2, 3])
    valid = np.array([True, False, True, True, False, True, True])
    rmsd = np.random.default_rng(1).uniform(0, 1, 7)
    path = write_extxyz(tmp_path / "c.extxyz", x, energy, BOX, boundary,
                        frame_info={"chain": chain, "valid": valid, "rmsd": rmsd,
                                    "method": np.array(["a", "b_c", "d", "e", "f", "g", "h"], dtype=object)},
                        info={"state": "gamma0.5_T1", "gamma": 0.5, "temperature": 1.0, "representation": "voxel"})
    frames, positions, energies = _read(path)
    assert len(frames) == 7
    assert np.array_equal(positions, x)
    assert np.array_equal(energies, energy)
    for k, atoms in enumerate(frames):
        assert np.array_equal(atoms.cell.array, np.eye(3) * BOX)
        assert atoms.pbc.tolist() == pbc
        assert atoms.get_chemical_symbols() == ["X"] * 5
        assert atoms.info["chain"] == chain[k] and atoms.info["valid"] == valid[k]
        assert atoms.info["rmsd"] == rmsd[k]  # info floats are exact too
        assert atoms.info["state"] == "gamma0.5_T1" and atoms.info["gamma"] == 0.5
        assert atoms.info["temperature"] == 1.0 and atoms.info["representation"] == "voxel"
        assert atoms.info["dim"] == 3 and atoms.info["file_format"] == EXTXYZ_FORMAT
    assert [a.info["method"] for a in frames] == ["a", "b_c", "d", "e", "f", "g", "h"]
    assert read_extxyz(path)[3].info["chain"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.extxyz"]  # atomic: no temporary file left


def test_the_same_content_gives_the_same_bytes(tmp_path):
    x, energy = _hard_coordinates(), np.arange(7.0)
    a = write_extxyz(tmp_path / "a.extxyz", x, energy, BOX, "reflect", info={"gamma": 0.25})
    b = write_extxyz(tmp_path / "b.extxyz", x.copy(), energy.copy(), BOX, "reflect", info={"gamma": 0.25})
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("boundary, pbc", [("reflect", [False] * 3), ("periodic", [True, True, False]),
                                           ("slab", [True, False, False])])
def test_two_dimensions_lie_in_the_xy_plane(tmp_path, boundary, pbc):
    x = _hard_coordinates(dim=2)
    frames, positions, energies = _read(write_extxyz(tmp_path / "d2.extxyz", x, np.zeros(7), BOX, boundary))
    assert np.array_equal(positions[:, :, :2], x) and np.all(positions[:, :, 2] == 0.0)
    assert frames[0].pbc.tolist() == pbc and frames[0].info["dim"] == 2
    assert np.array_equal(frames[0].cell.array, np.eye(3) * BOX)
    assert pbc_of(boundary, 2) == tuple(pbc)


def test_no_configuration_is_an_empty_file(tmp_path):
    path = write_extxyz(tmp_path / "none.extxyz", np.zeros((0, 5, 3)), np.zeros(0), BOX, "reflect")
    assert path.read_text() == "" and read_extxyz(path) == []


@pytest.mark.parametrize("change, message", [
    (dict(positions=np.zeros((4, 3))), r"positions of shape \(4, 3\) are invalid: expected \(S, N, dim\)"),
    (dict(positions=np.zeros((4, 5, 4))), r"expected \(S, N, dim\) with dim 2 or 3"),
    (dict(positions=np.zeros((4, 5, 3), dtype=np.int64)), "expected float coordinates"),
    (dict(energy=np.zeros(3)), r"energy of shape \(3,\) .* is invalid: expected \(4,\)"),
    (dict(energy=np.zeros((4, 1))), r"energy of shape \(4, 1\)"),
    (dict(box_length=-1.0), "box_length=-1.0 is invalid"),
    (dict(boundary="open"), "boundary='open' is invalid: expected one of"),
    (dict(frame_info={"chain": np.zeros(5)}), r"frame_info\['chain'\] of shape \(5,\) is invalid: expected \(4,\)"),
    (dict(frame_info={"energy": np.zeros(4)}), "info key 'energy' is reserved"),
    (dict(info={"pbc": "T"}), "info key 'pbc' is reserved"),
    (dict(info={"two words": 1}), "info key 'two words' is invalid"),
    (dict(info={"state": 'a"b'}), "may not hold quotes"),
    (dict(info={"config": {"a": 1}}), "expected a bool, int, float or str"),
    (dict(info={"gamma": 0.5}, frame_info={"gamma": np.zeros(4)}), "given both per frame and for every frame"),
])
def test_bad_input_is_a_clear_value_error(tmp_path, change, message):
    args = dict(positions=np.zeros((4, 5, 3)), energy=np.zeros(4), box_length=BOX, boundary="reflect")
    args.update(change)
    with pytest.raises(ValueError, match=message):
        write_extxyz(tmp_path / "bad.extxyz", **args)
    assert not (tmp_path / "bad.extxyz").exists() and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the stage, on every kind of file


def _sampled(tmp_path, state, gamma, num=6, n=5, seed=0):
    """A samples file from a real (short) Sampler run: one configuration every 5 sweeps."""
    sampler = Sampler(n_particles=n, box_length=BOX, temperature=1.0, gamma=gamma, dim=3, boundary="reflect",
                      seed=seed, step_size=0.3)
    sampler.run(20)
    positions, energy = [], []
    for _ in range(num):
        sampler.run(5)
        positions.append(sampler.positions)
        energy.append(sampler.energy)
    attrs = {"gamma": gamma, "temperature": 1.0, "n_particles": n, "box_length": BOX, "dim": 3,
             "boundary": "reflect", "cutoff": None, "seed": seed, "step_size": 0.3, "acceptance_rate": 0.5,
             "equilibration_sweeps": 20, "decorrelation_sweeps": 5, "state": state}
    chain = np.repeat([0, 1], num // 2)
    return io.write_samples(tmp_path / "samples" / f"{state}.h5", np.array(positions), np.array(energy), chain,
                            attrs)


STATES = {"gamma0_T1": 0.0, "gamma1_T1": 1.0}
SYSTEM = {"n_particles": 5, "box_length": BOX, "dim": 3, "boundary": "reflect"}


def _inputs(tmp_path, minimize=True):
    """Every input kind of the export rule, small and synthetic but the samples."""
    rng = np.random.default_rng(3)
    samples = [str(_sampled(tmp_path, s, g, seed=i)) for i, (s, g) in enumerate(STATES.items())]
    read = {s: io.read_samples(p) for s, p in zip(STATES, samples)}
    reconstruction = []
    for representation in ("voxel", "particles"):
        states = np.array(["gamma0_T1", "gamma1_T1", "gamma1_T1"], dtype=object)
        rows = np.array([1, 0, 5])
        original = np.stack([read[s].positions[i] for s, i in zip(states, rows)])
        arrays = {"original": original, "reconstructed": rng.uniform(0, BOX, original.shape),
                  "energy_original": np.array([read[s].energy[i] for s, i in zip(states, rows)]),
                  "energy_reconstructed": np.array([-3.5, np.inf, 12.25]), "gamma": np.array([0.0, 1.0, 1.0]),
                  "state": states, "sample_index": rows, "rmsd": np.array([0.1, 0.2, 0.3]),
                  "valid": np.array([1, 0, 1], np.int8), "min_distance": np.array([0.9, 0.0, 1.1])}
        path = tmp_path / "reconstruction" / representation / "test.h5"
        write_arrays(path, arrays, {**SYSTEM, "representation": representation, "cutoff": None},
                     RECONSTRUCTION_FORMAT)
        reconstruction.append(str(path))
    generation = []
    for representation in ("voxel", "particles"):
        for state, gamma in STATES.items():
            positions = rng.uniform(0, BOX, (4, 5, 3))
            positions[0, 1] = positions[0, 0] + 0.01  # an invalid draw: a pair closer than min_distance
            path = tmp_path / "generation" / representation / f"{state}.h5"
            write_arrays(path, {"positions": positions, "energy": rng.normal(size=4)},
                         {**SYSTEM, "state": state, "gamma": gamma, "temperature": 1.0,
                          "representation": representation}, GENERATED_FORMAT)
            generation.append(str(path))
    minimization, records, quench = [], [], []
    if minimize:
        for state, gamma in STATES.items():
            best = {m: rng.uniform(0, BOX, (5, 3)) for m in MINIMA_METHODS}
            path = tmp_path / "minimization" / f"{state}.h5"
            write_arrays(path, {**best, "path_step": np.arange(3)},
                         {"state": state, "gamma": gamma, "temperature": 1.0, "n_particles": 5,
                          "box_length": BOX, "dim": 3}, MINIMIZATION_FORMAT, same_rows=False)
            record = {"state": state, "energy_reference": -9.103852, "reference_source": "ccd",
                      "reference_from": "cross_polished", "reference_basinhopping": -9.1, "reference_cross_polished":
                      -9.103851, "energy_latent_exact": -9.0, "energy_latent_functional": -8.5,
                      "energy_grid_descent": -7.25, "energy_quench_only": -9.05}
            (tmp_path / "minimization" / f"{state}.json").write_text(json.dumps(record))
            minimization.append(str(path))
            records.append(str(tmp_path / "minimization" / f"{state}.json"))
            rows = np.array([0, 2, 5])
            path = tmp_path / "quench" / f"{state}.h5"
            write_arrays(path, {"positions": read[state].positions[rows] + 0.01, "energy": np.array([-9.0, -8.0, -7.0]),
                                "energy_mc": read[state].energy[rows], "sample_index": rows,
                                "split": np.array(["test", "train", "validation"]), "evaluations": np.array([9, 8, 7]),
                                "converged": np.array([True, True, False])},
                         {**SYSTEM, "state": state, "gamma": gamma, "temperature": 1.0, "cutoff": None},
                         QUENCH_FORMAT)
            quench.append(str(path))
    return {"samples": samples, "reconstruction": reconstruction, "generation": generation,
            "minimization": minimization, "records": records, "quench": quench}


def _outputs(out: Path, minimize=True):
    return {"samples": [str(out / "samples" / f"{s}.extxyz") for s in STATES],
            "reconstruction": [str(out / "reconstruction" / r / f"{v}.extxyz") for r in ("voxel", "particles")
                               for v in ("original", "reconstructed")],
            "generation": [str(out / "generation" / r / f"{s}.extxyz") for r in ("voxel", "particles")
                           for s in STATES],
            "minima": [str(out / "minima" / f"{s}.extxyz") for s in STATES] if minimize else [],
            "quench": [str(out / "quench" / f"{s}.extxyz") for s in STATES] if minimize else []}


def test_stage_exports_every_kind(tmp_path):
    inputs, out = _inputs(tmp_path), _outputs(tmp_path / "export")
    params = {"min_distance": 0.8, "code": "abc"}
    write_outputs(export(inputs, params), out, params)

    # samples: one frame per configuration, in the file's order, bit for bit
    for state, source in zip(STATES, inputs["samples"]):
        samples = io.read_samples(source)
        frames, positions, energies = _read(tmp_path / "export" / "samples" / f"{state}.extxyz")
        assert len(frames) == len(samples.energy) == 6
        assert np.array_equal(positions, samples.positions) and np.array_equal(energies, samples.energy)
        assert [a.info["chain"] for a in frames] == samples.chain.tolist()
        assert [a.info["sample_index"] for a in frames] == list(range(6))
        assert {(a.info["state"], a.info["gamma"], a.info["temperature"]) for a in frames} == {
            (state, STATES[state], 1.0)}
        assert frames[0].pbc.tolist() == [False] * 3 and np.array_equal(frames[0].cell.array, np.eye(3) * BOX)
        assert frames[0].info["source"] == source

    # reconstructions: frame k of both files is row k of test.h5
    for representation, source in zip(("voxel", "particles"), inputs["reconstruction"]):
        arrays, _ = io.read_arrays(source, RECONSTRUCTION_FORMAT)
        original, x0, e0 = _read(tmp_path / "export" / "reconstruction" / representation / "original.extxyz")
        decoded, x1, e1 = _read(tmp_path / "export" / "reconstruction" / representation / "reconstructed.extxyz")
        assert np.array_equal(x0, arrays["original"]) and np.array_equal(e0, arrays["energy_original"])
        assert np.array_equal(x1, arrays["reconstructed"]) and np.array_equal(e1, arrays["energy_reconstructed"])
        assert [a.info["state"] for a in decoded] == list(arrays["state"])
        assert [a.info["chain"] for a in original] == [0, 0, 1]  # from the samples files' chain column
        assert [a.info["valid"] for a in decoded] == [True, False, True]
        assert [a.info["rmsd"] for a in decoded] == [0.1, 0.2, 0.3]
        assert {a.info["representation"] for a in original + decoded} == {representation}

    # generated configurations: as decoded, with their validity
    for source in inputs["generation"]:
        arrays, attrs = io.read_arrays(source, GENERATED_FORMAT)
        frames, x, e = _read(tmp_path / "export" / "generation" / attrs["representation"]
                             / f"{attrs['state']}.extxyz")
        assert np.array_equal(x, arrays["positions"]) and np.array_equal(e, arrays["energy"])
        assert frames[0].info["valid"] is False and frames[0].info["closest_pair"] == pytest.approx(0.01 * 3**0.5)
        assert [a.info["draw"] for a in frames] == [0, 1, 2, 3]
        assert frames[0].info["gamma"] == STATES[attrs["state"]]

    # minima: the reference then each method, with its energy and gap
    for state, source in zip(STATES, inputs["minimization"]):
        arrays, _ = io.read_arrays(source, MINIMIZATION_FORMAT)
        frames, x, e = _read(tmp_path / "export" / "minima" / f"{state}.extxyz")
        assert [a.info["method"] for a in frames] == list(MINIMA_METHODS)
        assert np.array_equal(x, np.stack([arrays[m] for m in MINIMA_METHODS]))
        assert e.tolist() == [-9.103851, -9.0, -8.5, -7.25, -9.05]  # the reference's: cross_polished
        assert frames[1].info["relative_gap"] == pytest.approx((-9.0 + 9.103852) / 9.103852)
        assert frames[0].info["energy_reference"] == -9.103852 and frames[0].pbc.tolist() == [False] * 3

    # inherent structures
    for state, source in zip(STATES, inputs["quench"]):
        arrays, _ = io.read_arrays(source, QUENCH_FORMAT)
        frames, x, e = _read(tmp_path / "export" / "quench" / f"{state}.extxyz")
        assert np.array_equal(x, arrays["positions"]) and e.tolist() == [-9.0, -8.0, -7.0]
        assert [a.info["split"] for a in frames] == ["test", "train", "validation"]
        assert [a.info["converged"] for a in frames] == [True, True, False]
        assert [a.info["chain"] for a in frames] == [0, 0, 1]
    leftovers = [p for p in (tmp_path / "export").rglob(".*") if p.is_file()]
    assert leftovers == []


def test_stage_without_minimization_writes_no_minima(tmp_path):
    inputs, out = _inputs(tmp_path, minimize=False), _outputs(tmp_path / "export", minimize=False)
    params = {"min_distance": 0.8}
    write_outputs(export(inputs, params), out, params)
    assert not (tmp_path / "export" / "minima").exists() and not (tmp_path / "export" / "quench").exists()
    assert len(read_extxyz(out["samples"][0])) == 6


def test_stage_refuses_outputs_that_do_not_match_its_inputs(tmp_path):
    inputs, out = _inputs(tmp_path, minimize=False), _outputs(tmp_path / "export", minimize=False)
    out["samples"] = out["samples"][:1]
    with pytest.raises(RuntimeError, match="do not match"):
        write_outputs(export(inputs, {"min_distance": 0.8}), out, {})
