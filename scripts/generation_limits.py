"""What limits the generated energies: per state point, Monte Carlo against generated configurations (mean
height, pair energy), and the energy W1 / std of decodings of differently drawn latents.

    python scripts/generation_limits.py results [--representation particles]     # about 3 minutes on the demo

Reads a finished run's ``results/`` (samples, latent file, model, generation files); writes nothing. For each
trained state point it prints:

- U_LJ/N (pair energy per particle, eps) and <z> (mean height, sigma) of the MC samples and of the generated
  configurations as decoded, and the gravity energy per particle that the height error alone adds (4 gamma dz);
- W1(U/N) / std(U/N of the MC test configurations), total energy, for decodings of latents drawn as
  (a) the training latent means themselves, (b) a Gaussian mixture of them (1 and 8 components) with its
  spread scaled by 1.0, 0.8 and 0.6, and (c) the exact aggregate posterior (a training mean plus its posterior
  noise). The generate stage uses (b) with 8 components at scale 1.0. Beside each: the median RMSD of 100 of
  the decoded configurations to their nearest training configuration (permutation-aware), against that of the
  MC test configurations: a draw that decodes to a copy of a training configuration scores near 0.

The numbers in the README ("What limits these numbers") come from this script on the demo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _w1_over_std(sample, reference) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(sample, reference) / np.std(reference, ddof=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a finished run's results/ folder")
    parser.add_argument("--representation", default="particles")
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args(argv)

    from sklearn.mixture import GaussianMixture

    from vaepipe import energy, representations, structure
    from vaepipe.io.arrays import read_arrays, GENERATED_FORMAT
    from vaepipe.io.latent import read_latent
    from vaepipe.io.models import read_model
    from vaepipe.io.samples import read_samples

    results, rep_name = args.results, args.representation
    model = read_model(results / "models" / rep_name / "vae.keras")
    latent, _ = read_latent(results / "latent" / f"{rep_name}.parquet")
    means = [c for c in latent.columns if c.startswith("z_mean_")]
    log_vars = [c for c in latent.columns if c.startswith("z_log_var_")]
    rep = representations.get(rep_name)
    for generated_path in sorted((results / "generation" / rep_name).glob("*.h5")):
        arrays, attrs = read_arrays(generated_path, GENERATED_FORMAT)
        state, gamma = str(attrs["state"]), float(attrs["gamma"])
        samples = read_samples(results / "samples" / f"{state}.h5")
        box, n = float(samples.attrs["box_length"]), int(samples.attrs["n_particles"])
        system = {"n_particles": n, "box_length": box, "dim": int(samples.attrs["dim"]),
                  "boundary": str(samples.attrs.get("boundary", "reflect"))}

        def pair_energy(x):
            return np.array([energy.potential_energy(p, box, gamma=0.0, boundary=system["boundary"]) for p in x]) / n

        def total(x):
            return np.array([energy.potential_energy(p, box, gamma=gamma, boundary=system["boundary"])
                             for p in x]) / n

        mc, gen = samples.positions, arrays["positions"]
        u_mc, u_gen = pair_energy(mc), pair_energy(gen)
        z_mc, z_gen = mc[..., -1].mean(), gen[..., -1].mean()
        print(f"{state}: MC U_LJ/N {u_mc.mean():.3f} +- {u_mc.std():.3f}, <z> {z_mc:.3f} | generated U_LJ/N "
              f"{u_gen.mean():.3f} +- {u_gen.std():.3f}, <z> {z_gen:.3f}; 4 gamma dz = {4 * gamma * (z_gen - z_mc):+.3f}"
              " eps per particle")
        rows = (latent["state"] == state).to_numpy()
        train = rows & (latent["split"] == "train").to_numpy()
        test = rows & (latent["split"] == "test").to_numpy()
        reference = latent.loc[test, "energy"].to_numpy() / n
        train_x = mc[latent["sample_index"].to_numpy()[train]]
        test_x = mc[latent["sample_index"].to_numpy()[test]]
        mc_nearest = np.median(structure.nearest_rmsd(test_x[:100], train_x)[0])
        print(f"  MC test configurations: nearest training RMSD {mc_nearest:.3f} sigma")
        z_train = latent.loc[train, means].to_numpy(np.float64)
        sd_train = np.exp(0.5 * latent.loc[train, log_vars].to_numpy(np.float64))
        rng = np.random.default_rng(0)

        def report(z, label):
            decoded = np.asarray(model.decoder.predict(z.astype(np.float32), batch_size=256, verbose=0))
            x = rep.decode_positions(decoded, system)
            u = total(x)
            nearest = np.median(structure.nearest_rmsd(x[:100], train_x)[0])
            print(f"  {label:34s} W1/std {_w1_over_std(u, reference):6.3f}   <z> {x[..., -1].mean():.3f}   "
                  f"median U/N {np.median(u):+.3f} (MC {np.median(reference):+.3f})   nearest training "
                  f"{nearest:.3f}", flush=True)

        pick = rng.choice(len(z_train), args.draws)
        report(z_train[pick], "training means")
        for k in (1, 8):
            mixture = GaussianMixture(k, covariance_type="full", random_state=0, reg_covar=1e-5).fit(z_train)
            for scale in (1.0, 0.8, 0.6):
                comp = rng.choice(k, args.draws, p=mixture.weights_)
                draws = np.stack([rng.multivariate_normal(mixture.means_[c], mixture.covariances_[c] * scale ** 2)
                                  for c in comp])
                report(draws, f"mixture, {k} components, spread x{scale}")
        report(z_train[pick] + sd_train[pick] * rng.standard_normal(z_train[pick].shape), "aggregate posterior")
    return 0


if __name__ == "__main__":
    sys.exit(main())
