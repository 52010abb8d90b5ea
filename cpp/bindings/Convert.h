// Conversions shared by the export files: string options to enums, with messages that name the argument.
#pragma once

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "Sampler.h"
#include "System.h"

namespace vaepipe::detail {

inline Boundary toBoundary(const std::string& s) {
    if (s == "reflect") return Boundary::Reflect;
    if (s == "periodic") return Boundary::Periodic;
    if (s == "slab") return Boundary::Slab;
    throw std::invalid_argument("boundary must be 'reflect', 'periodic' or 'slab', got '" + s + "'");
}

inline NeighborMode toNeighborMode(const std::string& s) {
    if (s == "auto") return NeighborMode::Auto;
    if (s == "on") return NeighborMode::On;
    if (s == "off") return NeighborMode::Off;
    throw std::invalid_argument("neighbor_list must be 'auto', 'on' or 'off', got '" + s + "'");
}

// cutoff <= 0 or NaN never reaches here (Python validates); infinity means no cutoff.
inline SystemParams makeParams(int nParticles, double boxLength, double temperature, double gamma, int dim,
                               const std::string& boundary, double cutoff, bool tailCorrection) {
    SystemParams p;
    p.nParticles = nParticles;
    p.boxLength = boxLength;
    p.temperature = temperature;
    p.gamma = gamma;
    p.dim = dim;
    p.boundary = toBoundary(boundary);
    p.cutoff = cutoff;
    p.tailCorrection = tailCorrection;
    return p;
}

}  // namespace vaepipe::detail
