"""Workflow configuration: loading, schema defaults, semantic checks and state-point names.

The JSON schema (``vaepipe/schemas/config.schema.yaml``, package data) checks each key on its own and fills in
defaults. :func:`check_config` checks what a schema cannot: relations between keys and physical sense. Every error
is a ``ValueError`` that names the offending key, e.g.::

    config key system.n_particles = 5000: expected at most 125 particles in a 3-D box of side 5 sigma
    (number density <= 1 / sigma^3); fix: lower system.n_particles or raise system.box_length.

State points are the grid ``state_points.gamma x state_points.temperature``. Each is named
``gamma{g}_T{t}`` where ``g`` and ``t`` are the shortest decimal strings that read back as the same float
(Python's ``repr``), with a trailing ``.0`` dropped and ``e+`` written ``e``: ``gamma0.5_T1``, ``gamma0_T1.5``,
``gamma1e-05_T2``. Names are filename-safe, unique for distinct values, and :func:`parse_state_name` inverts them
exactly.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
from pathlib import Path
from typing import Any

import yaml

from vaepipe._validate import error
from vaepipe.boundary import check_cutoff, check_gravity, check_tail_correction, periodic_axes

__all__ = [
    "SCHEMA_PATH",
    "STATE_NAME_PATTERN",
    "MAX_NUMBER_DENSITY",
    "load_config",
    "read_config_file",
    "prepare_config",
    "apply_schema",
    "coerce_numbers",
    "schema_error",
    "check_config",
    "config_error",
    "normalize_numbers",
    "format_number",
    "state_name",
    "parse_state_name",
    "state_points",
    "heldout_state_points",
    "transfer_state_points",
]

#: The config schema. Package data, so that an installed vaepipe (editable or not) finds it next to this file.
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"

_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?"
#: Regular expression of a state-point name (also the Snakemake wildcard constraint of ``{state}``).
STATE_NAME_PATTERN = rf"gamma{_NUMBER}_T{_NUMBER}"

#: Highest number density (particles per sigma^dim) accepted. Denser than this the LJ system is a strained solid:
#: a random start cannot place the particles and Metropolis moves barely get accepted.
MAX_NUMBER_DENSITY = 1.0

#: Largest samples file (positions only) accepted, in bytes; more is almost surely a typo in a count.
MAX_SAMPLES_BYTES = 8 * 1024**3


def config_error(key: str, value: Any, expected: str, fix: str) -> ValueError:
    """The ValueError of a bad config value: ``config key {key}={value!r} is invalid: expected ...; fix: ...``."""
    return error(f"config key {key}", value, expected, fix)


_fail = config_error


def _get(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(
                f"config key {key} is missing; expected a validated config with every key present; fix: "
                f"validate it first (vaepipe.config.apply_schema, or snakemake.utils.validate), which fills "
                f"in the defaults")
        node = node[part]
    return node


# --------------------------------------------------------------------------- schema


def load_schema(schema_path: str | Path | None = None) -> dict:
    """The config schema as a dict (default: the package's own, :data:`SCHEMA_PATH`)."""
    path = Path(schema_path) if schema_path is not None else SCHEMA_PATH
    if not path.is_file():
        fix = ("pass schema_path= an existing file" if schema_path is not None else
               "reinstall vaepipe (python -m pip install -e <checkout>); the schema is package data at "
               "vaepipe/schemas/config.schema.yaml")
        raise FileNotFoundError(f"config schema not found at {path}; fix: {fix}")
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _validator_with_defaults(schema: dict):
    # The recipe of the jsonschema FAQ, as snakemake.utils.validate uses it, but filling in *copies* of the
    # defaults: the schema's own default objects must never be mutated by the nested defaults filled into them.
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


# YAML 1.2's float syntax. PyYAML (and so Snakemake) reads YAML 1.1, where a float needs a dot: ``1e-5`` is the
# string '1e-5' there, ``1.0e-5`` a float. Such strings become numbers wherever the schema expects one.
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def coerce_numbers(config: dict, schema_path: str | Path | None = None) -> dict:
    """Strings that are numbers in YAML 1.2 (``1e-5``, ``+2``) become floats for a number key, and whole numbers
    written as floats (``1e4``, ``30000.0``) become ints for an integer key, in place; returns the config. So
    ``gamma: [1e-5]`` and ``gamma: [1.0e-5]`` are the same config, as are ``sweeps: 3e4`` and ``sweeps: 30000``."""
    def kinds(schema):
        kind = schema.get("type")
        return [kind] if isinstance(kind, str) else (kind or [])

    def walk(value, schema):
        if isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    value[key] = walk(value[key], sub)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            return [walk(v, schema["items"]) for v in value]
        elif isinstance(value, str) and _YAML12_FLOAT.fullmatch(value.strip()):
            if "number" in kinds(schema):
                return float(value)
            if "integer" in kinds(schema) and float(value).is_integer():
                return int(float(value))
        elif isinstance(value, float) and value.is_integer() and kinds(schema) == ["integer"]:
            return int(value)
        return value

    walk(config, load_schema(schema_path))
    return config


def _expected(exc) -> tuple[str, str]:
    """What a jsonschema error expected, and the fix, in words."""
    kind, bound = exc.validator, exc.validator_value
    key = ".".join(str(p) for p in exc.absolute_path)
    if kind == "type":
        types = bound if isinstance(bound, list) else [bound]
        words = {"number": "a number", "integer": "a whole number", "string": "a string", "boolean": "true or false",
                 "array": "a list, e.g. [0.5]", "object": "a mapping of keys", "null": "null"}
        return " or ".join(words.get(t, t) for t in types), f"write {key} as {words.get(types[0], types[0])}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"a value {op} {bound}", f"set {key} {op} {bound}"
    if kind == "enum":
        return f"one of {bound}", f"use one of {', '.join(map(str, bound))}"
    if kind == "minItems":
        return f"at least {bound} item{'s' * (bound != 1)}", f"give {key} at least {bound} value{'s' * (bound != 1)}"
    if kind == "maxItems":
        return f"at most {bound} items", f"give {key} at most {bound} values"
    if kind == "uniqueItems":
        return "distinct values", f"remove the repeated values from {key}"
    if kind == "required":
        return f"the keys {bound}", "add the missing key"
    if kind in ("oneOf", "anyOf"):
        return "one of the forms its description lists", "see its description in vaepipe/schemas/config.schema.yaml"
    return exc.message, "see its description in vaepipe/schemas/config.schema.yaml"


def schema_error(exc) -> ValueError:
    """A jsonschema ValidationError as the project's one-line config error: key, value, expected, fix."""
    key = ".".join(str(p) for p in exc.absolute_path)
    if exc.validator == "additionalProperties":
        known = sorted(exc.schema.get("properties", {}))
        unknown = sorted(set(exc.instance) - set(known))
        close = difflib.get_close_matches(unknown[0], known, 1)
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        where = f"of {key}" if key else "at the top level"
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ValueError(f"config key {name} is unknown: expected one of the keys {where}: {', '.join(known)}; "
                          f"fix: {hint}correct the spelling or remove the key")
    expected, fix = _expected(exc)
    return _fail(key or "<top level>", exc.instance, expected, fix)


def apply_schema(config: dict, schema_path: str | Path | None = None, *, in_place: bool = False) -> dict:
    """Validate ``config`` against the schema and return it with every default filled in (a copy, unless
    ``in_place``). Strings that are YAML 1.2 numbers become numbers first (:func:`coerce_numbers`).

    Raises ValueError naming the offending key, the value, what is expected and the fix (the same checks
    snakemake.utils.validate makes, with the project's messages).
    """
    import jsonschema

    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _fail("<top level>", type(config).__name__, "a mapping of config keys", "write key: value lines")
    filled = config if in_place else copy.deepcopy(config)
    coerce_numbers(filled, schema_path)
    validator = _validator_with_defaults(load_schema(schema_path))
    error = jsonschema.exceptions.best_match(validator.iter_errors(filled))
    if error is not None:
        raise schema_error(error) from None
    return filled


def read_config_file(path: str | Path) -> dict:
    """A YAML config file as a dict; ValueError with the file, line and column of a syntax error, or for a file
    that is empty or not a mapping of keys (Snakemake's own loader says only "not valid JSON or YAML")."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    fix = "write one key: value per line, nested keys indented by spaces (no tabs), as in config.yaml"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"config file {path}{where}: {problem}; expected YAML; fix: {fix}") from None
    if raw is None:
        raise ValueError(f"config file {path} is empty; expected a mapping of config keys; fix: {fix}, or leave "
                         f"the file out")
    if not isinstance(raw, dict):
        raise ValueError(f"config file {path}: its top level is a {type(raw).__name__}; expected a mapping of "
                         f"config keys; fix: {fix}")
    return raw


def prepare_config(config: dict, schema_path: str | Path | None = None) -> dict:
    """What the workflow does with its config before any job, in place: YAML 1.2 numbers, the schema's
    defaults and checks, whole numbers as floats for float keys, then :func:`check_config`. Returns it."""
    apply_schema(config, schema_path, in_place=True)
    normalize_numbers(config, schema_path)
    return check_config(config)


def normalize_numbers(config: dict, schema_path: str | Path | None = None) -> dict:
    """Whole numbers given for float ("number") keys become floats, in place; returns the config.

    Snakemake compares params by value and repr, so ``box_length: 5`` and ``5.0`` would otherwise be different
    runs (and different provenance) for the same physics.
    """
    def walk(value, schema):
        kinds = schema.get("type")
        kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
        if isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    value[key] = walk(value[key], sub)
        elif isinstance(value, list) and "items" in schema:
            return [walk(v, schema["items"]) for v in value]
        elif isinstance(value, int) and not isinstance(value, bool) and "number" in kinds and "integer" not in kinds:
            return float(value)
        return value

    walk(config, load_schema(schema_path))
    return config


def load_config(path: str | Path, schema_path: str | Path | None = None) -> dict:
    """Read a YAML config, fill in the schema defaults, run :func:`check_config`; return the full config."""
    return prepare_config(read_config_file(path), schema_path)


# --------------------------------------------------------------------------- semantic checks


def _check_finite(key: str, value: Any) -> None:
    if value is not None and not math.isfinite(float(value)):
        raise _fail(key, value, "a finite number", f"set {key} to a finite value")


def check_config(config: dict) -> dict:
    """Semantic checks of a schema-validated config; returns it unchanged or raises ValueError naming the key."""
    n = _get(config, "system.n_particles")
    box_length = _get(config, "system.box_length")
    dim = _get(config, "system.dim")
    boundary = _get(config, "system.boundary")
    cutoff = _get(config, "system.cutoff")
    tail = _get(config, "system.tail_correction")
    gammas = _get(config, "state_points.gamma")
    temperatures = _get(config, "state_points.temperature")

    for key in ("system.box_length", "system.cutoff", "preliminary.initial_step_size",
                "sampling.equilibration_factor"):
        _check_finite(key, _get(config, key))
    for key, values in (("state_points.gamma", gammas), ("state_points.temperature", temperatures)):
        for v in values:
            _check_finite(key, v)

    max_n = math.floor(MAX_NUMBER_DENSITY * box_length**dim)
    if n > max_n:
        raise _fail("system.n_particles", n,
                    f"at most {max_n} particles in a {dim}-D box of side {box_length} sigma (number density <= "
                    f"{MAX_NUMBER_DENSITY:g} / sigma^{dim}, beyond which a random start cannot place them)",
                    "lower system.n_particles or raise system.box_length")

    check_cutoff("config key system.cutoff", boundary, cutoff, box_length,
                 f"set system.cutoff to at most {box_length / 2:g}, or raise system.box_length")
    check_gravity("config key state_points.gamma", boundary, list(gammas),
                  "set state_points.gamma: [0.0], or use boundary 'reflect' or 'slab'")
    check_tail_correction("config key system.tail_correction", boundary, cutoff, tail,
                          "set system.tail_correction: false")

    for key, values in (("state_points.gamma", gammas), ("state_points.temperature", temperatures)):
        floats = [float(v) for v in values]
        dupes = sorted({v for v in floats if floats.count(v) > 1})
        if dupes:
            raise _fail(key, list(values), f"distinct values (repeated: {', '.join(format_number(v) for v in dupes)})",
                        "remove the repeated values")

    step = _get(config, "preliminary.initial_step_size")
    if step > box_length / 2:
        raise _fail("preliminary.initial_step_size", step, f"at most box_length / 2 = {box_length / 2:g} sigma",
                    "use a step of a fraction of sigma, e.g. 0.2; the tuning adapts it")

    n_samples = _get(config, "sampling.chains") * _get(config, "sampling.samples_per_chain")
    size = n_samples * n * dim * 8
    if size > MAX_SAMPLES_BYTES:
        raise _fail("sampling.samples_per_chain", _get(config, "sampling.samples_per_chain"),
                    f"a samples file below {MAX_SAMPLES_BYTES / 1024**3:g} GiB per state point (this one would "
                    f"hold {size / 1024**3:.1f} GiB of positions)",
                    "lower sampling.samples_per_chain or sampling.chains")

    _check_features(config, box_length, dim, boundary)
    _check_models(config, n, box_length, dim)
    _check_analysis(config, gammas, boundary)
    _check_minimization(config, gammas, boundary)
    return config


#: Densest packing fraction of equal spheres (3-D, Kepler) and discs (2-D, hexagonal).
_PACKING = {2: math.pi / (2 * math.sqrt(3)), 3: math.pi / (3 * math.sqrt(2))}


def _max_min_distance(n: int, box_length: float, dim: int) -> float:
    """Largest distance d that n points in a box of side L can all keep from each other, bounded from above: n
    spheres of diameter d, centres in the box, fill at most the densest packing of the box grown by d; and no
    pair is farther apart than the box's diagonal."""
    ball = math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) / 2**dim  # volume of a sphere of diameter 1
    # n * ball * d^dim <= packing * (L + d)^dim  <=>  d / (L + d) <= (packing / (n * ball))^(1/dim)
    ratio = (_PACKING[dim] / (n * ball)) ** (1 / dim)
    diagonal = box_length * math.sqrt(dim)
    return diagonal if ratio >= 1 else min(diagonal, ratio * box_length / (1 - ratio))


def _check_models(config: dict, n: int, box_length: float, dim: int) -> None:
    """Pooling blocks that the grids can take; excluded-volume distances that n particles can keep in the box;
    a decoder projection that makes what it decodes valid."""
    from vaepipe import features

    trained = _get(config, "vae.representations")
    sides = {"voxel": features.num_cells(box_length, _get(config, "features.voxel.voxel_size"))}
    if _get(config, "vae.distance.architecture") == "conv":
        anchors = features.box_anchors(box_length, dim, _get(config, "features.distance.anchors"))
        sides["distance"] = n + len(anchors)
    for representation, side in sides.items():
        if representation not in trained:
            continue
        key = f"vae.{representation}.filters"
        filters = _get(config, key)
        most = max(1, math.ceil(math.log2(side)))
        if len(filters) > most:
            raise _fail(key, filters, f"at most {most} blocks for a side of {side}: each block halves it "
                        f"({side} -> {math.ceil(side / 2 ** most)} after {most}), and more blocks pool padding up "
                        f"to a {2 ** len(filters)}-wide decoder output", f"give {key} at most {most} values")
    limit = _max_min_distance(n, box_length, dim)
    keys = ["reconstruction.min_distance"] + (["vae.particles.min_distance"] if "particles" in trained else [])
    for key in keys:
        value = _get(config, key)
        if value > limit:
            raise _fail(key, value, f"a distance that {n} particles can keep from each other in a box of side "
                        f"{box_length:g} sigma (at most {limit:.3g} sigma at the densest packing)",
                        f"lower {key}, e.g. 0.8 sigma")
    if "particles" in trained:
        projection, valid = _get(config, "vae.particles.min_distance"), _get(config, "reconstruction.min_distance")
        if projection < valid:
            raise _fail("vae.particles.min_distance", projection, f"at least reconstruction.min_distance={valid!r}: "
                        f"the decoder pushes pairs apart to this distance, and a configuration is valid only with "
                        f"every pair at reconstruction.min_distance or more",
                        f"raise vae.particles.min_distance to {valid!r} or more, or lower reconstruction.min_distance")


def _check_minimization(config: dict, gammas, boundary: str) -> None:
    """Transfer gammas that are new (neither trained nor held out) and allowed."""
    transfer = _get(config, "minimization.transfer_gamma")
    for v in transfer:
        _check_finite("minimization.transfer_gamma", v)
    known = {float(g) for g in gammas} | {float(v) for v in _get(config, "analysis.heldout_gamma")}
    shared = sorted({float(v) for v in transfer} & known)
    if shared:
        raise _fail("minimization.transfer_gamma", list(transfer), f"gammas that are neither trained on nor held out "
                    f"(state_points.gamma or analysis.heldout_gamma also has "
                    f"{', '.join(format_number(v) for v in shared)})", "remove them from one of the lists")
    check_gravity("config key minimization.transfer_gamma", boundary, list(transfer),
                  "set minimization.transfer_gamma: []")


def transfer_state_points(config: dict) -> dict[str, dict[str, float]]:
    """The state points of ``minimization.transfer_gamma x state_points.temperature``: minimized, never sampled."""
    points = {}
    for g, t in itertools.product(_get(config, "minimization.transfer_gamma"),
                                  _get(config, "state_points.temperature")):
        points[state_name(g, t)] = {"gamma": float(g) + 0.0, "temperature": float(t)}
    return points


def _check_analysis(config: dict, gammas, boundary: str) -> None:
    """Held-out gammas that are new and allowed; ranges that are ranges; a headline VAE that is trained."""
    heldout = _get(config, "analysis.heldout_gamma")
    for v in heldout:
        _check_finite("analysis.heldout_gamma", v)
    shared = sorted({float(v) for v in heldout} & {float(g) for g in gammas})
    if shared:
        raise _fail("analysis.heldout_gamma", list(heldout), f"gammas that are not trained on (state_points.gamma "
                    f"also has {', '.join(format_number(v) for v in shared)})",
                    "remove them from one of the two lists")
    check_gravity("config key analysis.heldout_gamma", boundary, list(heldout), "set analysis.heldout_gamma: []")
    low, high = _get(config, "analysis.overlap_distance")
    if not low <= high:
        raise _fail("analysis.overlap_distance", [low, high], "[low, high] with low <= high (sigma)",
                    "e.g. [0.5, 0.7]")
    representation = _get(config, "analysis.representation")
    trained = _get(config, "vae.representations")
    if representation not in trained:
        raise _fail("analysis.representation", representation, f"one of the trained vae.representations {trained}",
                    f"add {representation!r} to vae.representations or pick one of them")


def _check_features(config: dict, box_length: float, dim: int, boundary: str) -> None:
    """The features section against the system: whole cells per side, Gaussians that fit, axes and anchors
    that exist. The messages are those of vaepipe.features, prefixed with the key."""
    from vaepipe import features

    voxel_size = _get(config, "features.voxel.voxel_size")
    try:
        features.num_cells(box_length, voxel_size)
    except ValueError as exc:
        raise ValueError(f"config key features.voxel.voxel_size = {voxel_size!r}: {exc}") from None
    width = _get(config, "features.voxel.width")
    limit = features.MAX_PERIODIC_WIDTH_FRACTION * box_length
    wraps = bool(periodic_axes(boundary, dim))
    if _get(config, "features.voxel.method") == "gaussian" and wraps and width > limit:
        raise _fail("features.voxel.width", width, f"at most box_length / 4 = {limit:g} sigma with boundary "
                    f"{boundary!r} (a wider Gaussian wraps into a nearly uniform grid)",
                    "lower features.voxel.width")
    sort_axis = _get(config, "features.coordinates.sort_axis")
    if sort_axis >= dim:
        raise _fail("features.coordinates.sort_axis", sort_axis, f"an axis of the {dim}-D box, 0 to {dim - 1} "
                    f"(0 = x, {dim - 1} = height)", f"set features.coordinates.sort_axis to 0..{dim - 1}")
    anchors = _get(config, "features.distance.anchors")
    try:
        features.box_anchors(box_length, dim, anchors)
    except ValueError as exc:
        raise ValueError(f"config key features.distance.anchors = {anchors!r}: {exc}; fix: give each point {dim} "
                         f"coordinates in [0, {box_length:g}] sigma, or use 'corners' or 'none'") from None


# --------------------------------------------------------------------------- state points


def format_number(x: float) -> str:
    """Shortest filename-safe decimal that reads back (``float(s)``) as the same float: 0.5 -> '0.5', 1.0 -> '1'."""
    value = float(x) + 0.0  # -0.0 -> 0.0, so that no name carries a minus sign for zero
    if not math.isfinite(value):
        raise ValueError(f"cannot name a state point with the non-finite value {x!r}")
    text = repr(value)
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace("e+", "e")


def state_name(gamma: float, temperature: float) -> str:
    """Name of a state point, e.g. ``state_name(0.5, 1.0) == 'gamma0.5_T1'``."""
    return f"gamma{format_number(gamma)}_T{format_number(temperature)}"


def parse_state_name(name: str) -> dict[str, float]:
    """Inverse of :func:`state_name`: ``'gamma0.5_T1' -> {'gamma': 0.5, 'temperature': 1.0}``."""
    match = re.fullmatch(rf"gamma({_NUMBER})_T({_NUMBER})", name)
    if match is None or state_name(float(match[1]), float(match[2])) != name:
        raise ValueError(
            f"state-point name {name!r}: expected the form gamma{{gamma}}_T{{temperature}} with numbers written "
            f"as vaepipe.config.format_number does (e.g. 'gamma0.5_T1'); fix: build names with state_name()")
    return {"gamma": float(match[1]), "temperature": float(match[2])}


def state_points(config: dict) -> dict[str, dict[str, float]]:
    """Every state point of the config, ``{name: {'gamma': g, 'temperature': t}}``, gamma-major in config order."""
    points = {}
    for g, t in itertools.product(_get(config, "state_points.gamma"), _get(config, "state_points.temperature")):
        points[state_name(g, t)] = {"gamma": float(g) + 0.0, "temperature": float(t)}
    return points


def heldout_state_points(config: dict) -> dict[str, dict[str, float]]:
    """The held-out state points, ``analysis.heldout_gamma x state_points.temperature``, named as
    :func:`state_points` names them: sampled and featurized, never trained on."""
    points = {}
    for g, t in itertools.product(_get(config, "analysis.heldout_gamma"), _get(config, "state_points.temperature")):
        points[state_name(g, t)] = {"gamma": float(g) + 0.0, "temperature": float(t)}
    return points
