// Potential energy of whole configurations, shared by the sampler's from-scratch recompute and the standalone
// vaepipe.energy.potential_energy, so there is one implementation of the model.
#pragma once

#include <cstdint>

#include "Kernel.h"
#include "System.h"

namespace vaepipe {

// Sum of LJ pair energies over i < j, in index order, so the result depends only on the coordinates.
// x, y, z are structure-of-arrays coordinates, NaN-padded from n up to paddedSize(n) + kLanes.
double pairEnergy(PairSumsFn kernel, const double* x, const double* y, const double* z, std::int64_t n,
                  double boxLength, double cutoff2);

// 4 gamma sum_i h_i with h the last coordinate.
double gravityEnergy(const double* height, std::int64_t n, double gamma);

// Total energy / eps (pair + gravity + tail correction) of `count` configurations stored row-major as
// (count, n_particles, dim). Throws std::invalid_argument for coordinates outside [0, L] or non-finite.
void totalEnergies(const SystemParams& params, const double* positions, std::int64_t count, double* out);

// Forces / (eps / sigma), F_i = -dU/dr_i of the same energy (the tail correction is a constant and exerts none),
// of `count` configurations (count, n_particles, dim), written to out in the same layout. Pairs within the
// cutoff (r < rc, as the energy counts them) interact through the minimum image on periodic axes; gravity
// adds -4 gamma to the last component. Throws std::invalid_argument like totalEnergies, and for two particles
// at the same place (the force is undefined there).
void totalForces(const SystemParams& params, const double* positions, std::int64_t count, double* out);

}  // namespace vaepipe
