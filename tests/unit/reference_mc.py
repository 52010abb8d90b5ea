"""Plain NumPy Metropolis Monte Carlo of the vaepipe model, used as a test oracle.

Same physics as the compiled sampler (docs in DESIGN.md), in reduced Lennard-Jones units:

    U/eps = sum_{i<j} 4 [ r_ij^-12 - r_ij^-6 ]  +  4 gamma sum_i z_i        (z = last coordinate)

- boundary "reflect": closed box [0, L]^dim, a trial coordinate outside is mirrored back (x -> -x,
  x -> 2L - x), no minimum image.
- boundary "periodic": minimum image, coordinates wrapped into [0, L).
- cutoff rc (optional): pairs at r >= rc contribute nothing, pairs inside contribute the plain LJ term
  (truncated, not shifted). The tail correction adds N * U_lrc/N, a constant for fixed N and L.
- Moves: pick a particle uniformly at random, displace it uniformly in [-step_size, step_size]^dim, accept
  with probability min(1, exp(-dU / T)).

Written to be read, not to be fast (one Python-level step per trial move, vectorised over the other
particles). It deliberately imports nothing from vaepipe: the tests compare the compiled code against it.
"""

import numpy as np

BOUNDARIES = ("reflect", "periodic", "slab")


def pair_energy(r):
    """Lennard-Jones pair energy 4 (r^-12 - r^-6) in eps; r in sigma (scalar or array)."""
    r = np.asarray(r, dtype=float)
    return pair_energy_squared(r * r)


def pair_energy_squared(r2):
    """The same from r^2 (no square root, no pow: this is the reference's inner loop). r2 = inf gives 0."""
    with np.errstate(divide="ignore", over="ignore"):
        inv6 = 1.0 / (r2 * r2 * r2)
        # inv6 * (inv6 - 1) rather than inv6**2 - inv6 keeps r = 0 at +inf instead of inf - inf = nan.
        return 4.0 * inv6 * (inv6 - 1.0)


def tail_correction_per_particle(density, cutoff, dim=3):
    """Long-range correction U_lrc/N in eps for a uniform fluid beyond the cutoff.

    density: n_particles / L^dim (sigma^-dim). dim 3: (8/3) pi rho [rc^-9/3 - rc^-3];
    dim 2: pi rho [(2/5) rc^-10 - rc^-4].
    """
    rc = float(cutoff)
    if dim == 3:
        return 8.0 / 3.0 * np.pi * density * (rc**-9 / 3.0 - rc**-3)
    if dim == 2:
        return np.pi * density * (0.4 * rc**-10 - rc**-4)
    raise ValueError(f"dim={dim!r}: expected 2 or 3")


def separation(delta, box_length, boundary):
    """Pair separation vectors (..., dim); periodic axes use the minimum image (slab: all but the last)."""
    if boundary == "periodic":
        return delta - box_length * np.round(delta / box_length)
    if boundary == "slab":
        lateral = delta[..., :-1] - box_length * np.round(delta[..., :-1] / box_length)
        return np.concatenate([lateral, delta[..., -1:]], axis=-1)
    return delta


def mirror_into_box(x, box_length):
    """Fold coordinates into [0, L] by mirroring at the walls (any displacement, not only one wall crossing)."""
    folded = np.mod(x, 2.0 * box_length)
    return np.where(folded > box_length, 2.0 * box_length - folded, folded)


def potential_energy(positions, box_length, gamma=0.0, boundary="reflect", cutoff=None, tail_correction=False):
    """Total potential energy / eps of one configuration, positions (N, dim) in sigma, by an explicit pair sum."""
    positions = np.asarray(positions, dtype=float)
    n_particles, dim = positions.shape
    i, j = np.triu_indices(n_particles, k=1)
    r = np.linalg.norm(separation(positions[i] - positions[j], box_length, boundary), axis=-1)
    e_pair = pair_energy(r)
    if cutoff is not None:
        e_pair = np.where(r < cutoff, e_pair, 0.0)
    energy = e_pair.sum() + 4.0 * gamma * positions[:, -1].sum()
    if tail_correction:
        energy += n_particles * tail_correction_per_particle(n_particles / box_length**dim, cutoff, dim)
    return float(energy)


def lattice_positions(n_particles, box_length, dim=3):
    """Simple cubic (square) lattice filling the box, first n_particles sites, (N, dim)."""
    per_side = int(np.ceil(n_particles ** (1.0 / dim) - 1e-9))
    spacing = box_length / per_side
    axes = [np.arange(per_side) * spacing + spacing / 2] * dim
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    return grid[:n_particles].copy()


def random_positions(n_particles, box_length, dim=3, seed=0, min_distance=0.9, max_tries=100000, boundary="reflect"):
    """Random sequential placement with no pair closer than min_distance (minimum image per boundary), (N, dim)."""
    rng = np.random.default_rng(seed)
    placed = []
    for _ in range(max_tries):
        x = rng.uniform(0.0, box_length, size=dim)
        if all(np.linalg.norm(separation(x - y, box_length, boundary)) >= min_distance for y in placed):
            placed.append(x)
            if len(placed) == n_particles:
                return np.array(placed)
    raise ValueError(f"could not place n_particles={n_particles} in box_length={box_length}; use lattice_positions")


class ReferenceSampler:
    """Single-particle-move Metropolis sampler, the slow and simple twin of vaepipe.mc.Sampler.

    It advances R independent replicas in lockstep (each replica is its own Markov chain; they never
    interact), so that the NumPy overhead per step is shared by all of them. R = 1 is the plain sampler.

    positions: (N, dim) or (R, N, dim) start configurations in sigma, inside the box.
    Attributes: positions (R, N, dim), energy (R,) in eps (updated incrementally), attempted and accepted
    (counted over all replicas). One sweep = N trial moves in every replica.
    """

    def __init__(self, positions, box_length, temperature, gamma=0.0, boundary="reflect", cutoff=None,
                 tail_correction=False, step_size=0.2, seed=0):
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r}: expected one of {BOUNDARIES}")
        if boundary == "periodic" and gamma != 0.0:
            raise ValueError("gravity is not defined in a periodic box: use gamma=0")
        if tail_correction and cutoff is None:
            raise ValueError("tail_correction needs a cutoff")
        positions = np.array(positions, dtype=float)
        self.positions = positions[None] if positions.ndim == 2 else positions
        self.n_replicas, self.n_particles, self.dim = self.positions.shape
        self.box_length = float(box_length)
        self.temperature = float(temperature)
        self.gamma = float(gamma)
        self.boundary = boundary
        self.cutoff = cutoff
        self.tail_correction = tail_correction
        self.step_size = float(step_size)
        self.rng = np.random.default_rng(seed)
        self.attempted = 0
        self.accepted = 0
        self.energy = self.recompute_energy()

    def recompute_energy(self):
        """Total energies (R,) from scratch."""
        return np.array([potential_energy(p, self.box_length, self.gamma, self.boundary, self.cutoff,
                                          self.tail_correction) for p in self.positions])

    @property
    def acceptance_rate(self):
        return self.accepted / max(self.attempted, 1)

    def particle_energy(self, i, x):
        """Energy of particle i[r] placed at x[r] in each replica r: pair terms with every j != i plus gravity.

        i: (R,) particle indices, x: (R, dim) positions. Returns (R,).
        """
        replicas = np.arange(self.n_replicas)
        delta = separation(self.positions - x[:, None, :], self.box_length, self.boundary)  # (R, N, dim)
        r2 = np.einsum("rjk,rjk->rj", delta, delta)
        r2[replicas, i] = np.inf  # no self-interaction; pair_energy(inf) = 0
        e_pair = pair_energy_squared(r2)
        if self.cutoff is not None:
            e_pair = np.where(r2 < self.cutoff**2, e_pair, 0.0)
        return e_pair.sum(axis=1) + 4.0 * self.gamma * x[:, -1]

    def trial_move(self):
        """One Metropolis step in every replica: a random particle, a uniform displacement, accept or not."""
        replicas = np.arange(self.n_replicas)
        i = self.rng.integers(self.n_particles, size=self.n_replicas)
        old = self.positions[replicas, i]
        new = old + self.rng.uniform(-self.step_size, self.step_size, size=(self.n_replicas, self.dim))
        if self.boundary == "reflect":
            new = mirror_into_box(new, self.box_length)
        elif self.boundary == "slab":  # wrap the horizontal axes, mirror the height
            new = np.concatenate([np.mod(new[:, :-1], self.box_length),
                                  mirror_into_box(new[:, -1:], self.box_length)], axis=1)
        else:
            new = np.mod(new, self.box_length)
        delta_u = self.particle_energy(i, new) - self.particle_energy(i, old)
        # u < exp(-dU/T) with u in [0, 1) is min(1, exp(-dU/T)); dU = +inf (overlap) gives exp = 0: reject.
        with np.errstate(over="ignore"):
            accept = self.rng.random(self.n_replicas) < np.exp(-delta_u / self.temperature)
        self.positions[replicas[accept], i[accept]] = new[accept]
        self.energy[accept] += delta_u[accept]
        self.attempted += self.n_replicas
        self.accepted += int(accept.sum())

    def run(self, sweeps):
        for _ in range(sweeps * self.n_particles):
            self.trial_move()
        return self

    def sample(self, num_samples, interval):
        """Run `interval` sweeps, record; num_samples times. Returns positions (S, R, N, dim), energies (S, R)."""
        positions = np.empty((num_samples,) + self.positions.shape)
        energies = np.empty((num_samples, self.n_replicas))
        for k in range(num_samples):
            self.run(interval)
            positions[k] = self.positions
            energies[k] = self.energy
        return positions, energies
