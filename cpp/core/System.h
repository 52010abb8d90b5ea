// The physical model shared by the sampler and the standalone energy function.
//
// Reduced LJ units: lengths in sigma, energies in epsilon, T* = kT/epsilon.
//     U = sum_{i<j} 4 (r^-12 - r^-6) + 4 gamma sum_i z_i
// where z is the last coordinate (height above the floor, in [0, L]). gamma = m g sigma / (4 epsilon).
#pragma once

#include "Boundary.h"

#include <cmath>
#include <limits>
#include <string>

namespace vaepipe {

inline const char* boundaryName(Boundary b) {
    return b == Boundary::Reflect ? "reflect" : b == Boundary::Periodic ? "periodic" : "slab";
}

struct SystemParams {
    int nParticles = 0;
    double boxLength = 0.0;
    double temperature = 1.0;
    double gamma = 0.0;
    int dim = 3;
    Boundary boundary = Boundary::Reflect;
    // Infinity when there is no cutoff.
    double cutoff = std::numeric_limits<double>::infinity();
    bool tailCorrection = false;

    bool hasCutoff() const { return std::isfinite(cutoff); }

    // Throws std::invalid_argument naming the offending value; the Python wrapper checks first with friendlier
    // messages, so this is the last line of defence for direct users of the extension.
    void validate() const;

    double volume() const { return dim == 3 ? boxLength * boxLength * boxLength : boxLength * boxLength; }

    // Standard long-range correction for a truncated (unshifted) LJ potential in a homogeneous fluid:
    //   3D: U_lrc / N = (8/3) pi rho [ rc^-9 / 3 - rc^-3 ]
    //   2D: U_lrc / N = pi rho [ (2/5) rc^-10 - rc^-4 ]
    double tailEnergy() const;
};

}  // namespace vaepipe
