#include "NeighborList.h"

#include "Kernel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace vaepipe {

namespace {

inline double minimumImage(double d, double boxLength, bool periodic) {
    if (periodic) {
        if (d > 0.5 * boxLength) d -= boxLength;
        if (d < -0.5 * boxLength) d += boxLength;
    }
    return d;
}

}  // namespace

double NeighborList::displacement2(std::int64_t i, const double* pos, int dim, double boxLength,
                                   Boundary boundary) const {
    double d2 = 0.0;
    for (int k = 0; k < dim; ++k) {
        const double d = minimumImage(pos[k] - m_ref[i * dim + k], boxLength, periodicAxis(boundary, k, dim));
        d2 += d * d;
    }
    return d2;
}

namespace {

// Appends to out[count...] the ids of entries [begin, end) of the cell-sorted coordinates closer than
// sqrt(range2) to p, except `self`; returns the new count. `out` must have room for end - begin more entries.
// Distances go to a scratch buffer first so that loop vectorises; the compaction is branch-free.
std::int64_t appendClose(const double* const* sorted, const std::int32_t* ids, std::int64_t begin,
                         std::int64_t end, const double* p, int dim, double boxLength, Boundary boundary,
                         double range2, std::int32_t self, double* __restrict dist, std::int32_t* __restrict out,
                         std::int64_t count) {
    // `boundary` here asks for the minimum image per pair (on the periodic axes); the cell scan instead shifts p
    // to the image that matches each wrapped run of cells and passes Reflect, which saves the wrap arithmetic.
    const std::int64_t len = end - begin;
    const double* __restrict cx = sorted[0] + begin;
    const double* __restrict cy = sorted[1] + begin;
    const double* __restrict cz = sorted[2] + begin;  // zeros in 2D, where p[2] is 0 too
    const double px = p[0], py = p[1], pz = p[2];
    if (boundary == Boundary::Reflect) {
#pragma omp simd
        for (std::int64_t m = 0; m < len; ++m) {
            const double dx = px - cx[m], dy = py - cy[m], dz = pz - cz[m];
            dist[m] = dx * dx + dy * dy + dz * dz;
        }
    } else {
        // Minimum image as min(|d|, period - |d|), with an infinite period on the axes that do not wrap.
        const double inf = std::numeric_limits<double>::infinity();
        const double lx = periodicAxis(boundary, 0, dim) ? boxLength : inf;
        const double ly = periodicAxis(boundary, 1, dim) ? boxLength : inf;
        const double lz = periodicAxis(boundary, 2, dim) ? boxLength : inf;
#pragma omp simd
        for (std::int64_t m = 0; m < len; ++m) {
            double dx = __builtin_fabs(px - cx[m]), dy = __builtin_fabs(py - cy[m]), dz = __builtin_fabs(pz - cz[m]);
            dx = dx < lx - dx ? dx : lx - dx;
            dy = dy < ly - dy ? dy : ly - dy;
            dz = dz < lz - dz ? dz : lz - dz;
            dist[m] = dx * dx + dy * dy + dz * dz;
        }
    }
    for (std::int64_t m = 0; m < len; ++m) {
        const std::int32_t j = ids[begin + m];
        out[count] = j;
        count += (dist[m] < range2) & (j != self);
    }
    return count;
}

}  // namespace

void NeighborList::build(const double* x, const double* y, const double* z, std::int64_t n, int dim,
                         double boxLength, Boundary boundary, double range) {
    if (n > INT32_MAX) throw std::invalid_argument("too many particles for the neighbour list");
    const double* coord[3] = {x, y, z};
    const double range2 = range * range;
    m_start.assign(n + 1, 0);
    m_indices.clear();
    m_ref.resize(n * dim);
    for (std::int64_t i = 0; i < n; ++i) {
        for (int k = 0; k < dim; ++k) m_ref[i * dim + k] = coord[k][i];
    }

    // Sort particles by cell (counting sort, stable, so the list order is reproducible). Cells of side >=
    // range / 2, scanning two cells each way, visit (5/6)^3 of the candidates that cells of side >= range and
    // one cell each way would. The 5 cells per axis must be distinct (nc >= 5; a box too small for that also
    // has too few cells for reach 1 to pay), otherwise everything is one cell and the scan is over all pairs.
    int reach = 0;
    std::int64_t nc = 1;
    if (const auto perSide = static_cast<std::int64_t>(std::floor(2.0 * boxLength / range)); perSide >= 5) {
        reach = 2;
        nc = perSide;
    }
    const std::int64_t numCells = dim == 3 ? nc * nc * nc : nc * nc;
    std::vector<std::int64_t> cellOf(n);
    std::vector<std::int64_t> cellStart(numCells + 1, 0);
    // Clamped as a double before the cast: an out-of-range value must not reach the (undefined) conversion.
    auto cellIndex = [&](double v) {
        return static_cast<std::int64_t>(std::clamp(std::floor(v * nc / boxLength), 0.0, static_cast<double>(nc - 1)));
    };
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t c = 0;
        for (int k = dim - 1; k >= 0; --k) c = c * nc + cellIndex(coord[k][i]);
        cellOf[i] = c;
        ++cellStart[c + 1];
    }
    for (std::int64_t c = 0; c < numCells; ++c) cellStart[c + 1] += cellStart[c];
    std::vector<std::int32_t> ids(n);
    // zs stays zero in 2D so the distance loop needs no dimension branch on memory.
    std::vector<double> xs(n), ys(n), zs(n, 0.0);
    {
        std::vector<std::int64_t> fill(cellStart.begin(), cellStart.end() - 1);
        for (std::int64_t i = 0; i < n; ++i) {
            const std::int64_t slot = fill[cellOf[i]]++;
            ids[slot] = static_cast<std::int32_t>(i);
            xs[slot] = x[i];
            ys[slot] = y[i];
            if (dim == 3) zs[slot] = z[i];
        }
    }
    const double* sorted[3] = {xs.data(), ys.data(), zs.data()};
    std::vector<double> dist(n);
    // Room for every candidate of one particle beyond what is stored; grown when a particle needs more.
    if (m_indices.size() < static_cast<std::size_t>(n)) m_indices.resize(n);
    std::int64_t stored = 0;

    const int zReach = dim == 3 ? reach : 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const double p[3] = {x[i], y[i], dim == 3 ? z[i] : 0.0};
        std::int64_t ci[3] = {0, 0, 0};
        std::int64_t c = cellOf[i];
        for (int k = 0; k < dim; ++k) {
            ci[k] = c % nc;
            c /= nc;
        }
        if (static_cast<std::int64_t>(m_indices.size()) < stored + n) m_indices.resize(2 * (stored + n));
        for (int dz = -zReach; dz <= zReach; ++dz) {
            for (int dy = -reach; dy <= reach; ++dy) {
                // Query point shifted to the periodic image that the neighbour cells across a wall see.
                double q[3] = {p[0], p[1], p[2]};
                std::int64_t cy = ci[1] + dy;
                std::int64_t cz = ci[2] + dz;
                if (cy < 0 || cy >= nc) {
                    if (!periodicAxis(boundary, 1, dim)) continue;
                    q[1] += cy < 0 ? boxLength : -boxLength;
                    cy = (cy + nc) % nc;
                }
                if (cz < 0 || cz >= nc) {
                    if (!periodicAxis(boundary, 2, dim)) continue;
                    q[2] += cz < 0 ? boxLength : -boxLength;
                    cz = (cz + nc) % nc;
                }
                // The x-neighbours of a cell are consecutive cells, hence one contiguous run of the sorted
                // arrays, split in two where the periodic box wraps.
                const std::int64_t row = (dim == 3 ? cz * nc + cy : cy) * nc;
                const std::int64_t lo = ci[0] - reach;
                const std::int64_t hi = ci[0] + reach;
                std::int64_t first[2] = {std::max<std::int64_t>(lo, 0), 0};
                std::int64_t last[2] = {std::min<std::int64_t>(hi, nc - 1), -1};
                double qx[2] = {q[0], q[0]};
                const bool periodicX = periodicAxis(boundary, 0, dim);
                if (periodicX && lo < 0) {
                    first[1] = lo + nc;
                    last[1] = nc - 1;
                    qx[1] = q[0] + boxLength;
                } else if (periodicX && hi >= nc) {
                    first[1] = 0;
                    last[1] = hi - nc;
                    qx[1] = q[0] - boxLength;
                }
                for (int r = 0; r < 2; ++r) {
                    if (last[r] < first[r]) continue;
                    const double qr[3] = {qx[r], q[1], q[2]};
                    // With one cell (reach 0) there is no shift to apply: the pairs need the minimum image.
                    stored = appendClose(sorted, ids.data(), cellStart[row + first[r]], cellStart[row + last[r] + 1],
                                         qr, dim, boxLength, reach == 0 ? boundary : Boundary::Reflect, range2,
                                         static_cast<std::int32_t>(i), dist.data(), m_indices.data(), stored);
                }
            }
        }
        m_start[i + 1] = stored;
    }
    m_indices.resize(stored);
    m_maxCount = 0;
    for (std::int64_t i = 0; i < n; ++i) m_maxCount = std::max(m_maxCount, m_start[i + 1] - m_start[i]);
    m_dirty = false;
    ++m_rebuilds;
}

}  // namespace vaepipe
