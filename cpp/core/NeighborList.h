// Verlet neighbour list with a skin (Verlet 1967; Allen & Tildesley, ch. 5), built through a cell list.
//
// Every pair closer than cutoff + skin at build time is listed. As long as every particle stays within skin/2
// of where it was at the build, every pair now inside the cutoff is listed, so the energy of a move needs only
// the listed neighbours: about rho (4/3) pi (rc + skin)^3 of them, independent of N.
#pragma once

#include "Boundary.h"

#include <cstdint>
#include <vector>

namespace vaepipe {

class NeighborList {
public:
    // Builds the list for n particles with coordinates x, y, z (z ignored when dim = 2) in a box of side L;
    // the boundary says which axes wrap (see periodicAxis in Kernel.h).
    void build(const double* x, const double* y, const double* z, std::int64_t n, int dim, double boxLength,
               Boundary boundary, double range);

    std::int64_t begin(std::int64_t i) const { return m_start[i]; }
    std::int64_t end(std::int64_t i) const { return m_start[i + 1]; }
    const std::int32_t* indices() const { return m_indices.data(); }
    std::int64_t maxCount() const { return m_maxCount; }
    double meanCount() const {
        return m_start.size() > 1 ? static_cast<double>(m_indices.size()) / (m_start.size() - 1) : 0.0;
    }

    // Squared displacement of a position from particle i's position at the last build.
    double displacement2(std::int64_t i, const double* pos, int dim, double boxLength, Boundary boundary) const;

    bool dirty() const { return m_dirty; }
    const std::vector<double>& reference() const { return m_ref; }
    void markDirty() { m_dirty = true; }
    std::uint64_t rebuilds() const { return m_rebuilds; }

private:
    std::vector<std::int64_t> m_start;
    std::vector<std::int32_t> m_indices;
    std::vector<double> m_ref;  // row-major positions at the last build
    std::int64_t m_maxCount = 0;
    bool m_dirty = true;
    std::uint64_t m_rebuilds = 0;
};

}  // namespace vaepipe
