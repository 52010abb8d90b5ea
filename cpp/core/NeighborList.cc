#include "NeighborList.h"

#include "Kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace vaepipe {

namespace {

// min(|d|, period - |d|): the minimum-image separation along one axis (period +inf on axes that do not wrap).
// Symmetric in the two particles to the last bit, so the pair set does not depend on which one asks.
inline double fold(double d, double period) {
    const double a = __builtin_fabs(d);
    const double b = period - a;
    return a < b ? a : b;
}

}  // namespace

std::int64_t NeighborList::cellOf(const double* pos) const {
    const std::int64_t nc = m_cellsPerSide;
    std::int64_t c = 0;
    for (int k = m_dim - 1; k >= 0; --k) {
        // Clamped as a double before the cast: an out-of-range value must not reach the (undefined) conversion.
        const double v = std::clamp(std::floor(pos[k] * nc / m_boxLength), 0.0, static_cast<double>(nc - 1));
        c = c * nc + static_cast<std::int64_t>(v);
    }
    return c;
}

double NeighborList::displacement2(std::int64_t i, const double* pos) const {
    double d2 = 0.0;
    for (int k = 0; k < m_dim; ++k) {
        const double d = fold(pos[k] - m_ref[k][i], m_period[k]);
        d2 += d * d;
    }
    return d2;
}

double NeighborList::meanCount() const {
    if (m_n == 0 || m_dirty) return 0.0;
    std::int64_t total = 0;
    for (std::int64_t i = 0; i < m_n; ++i) total += m_count[i];
    return static_cast<double>(total) / static_cast<double>(m_n);
}

std::vector<double> NeighborList::reference() const {
    std::vector<double> out(m_n * m_dim);
    for (std::int64_t i = 0; i < m_n; ++i) {
        for (int k = 0; k < m_dim; ++k) out[i * m_dim + k] = m_ref[k][i];
    }
    return out;
}

// Appends to out[count...] the members of c closer than the range to pos, except `exclude`; returns the new
// count. One fused loop with a branch-free append: cells hold a handful of particles, too few for a separate
// vectorised distance pass to pay for its set-up.
std::int64_t NeighborList::scanCell(const Cell& c, const double* pos, std::int64_t exclude, std::int32_t* out,
                                    std::int64_t count) const {
    const auto len = static_cast<std::int64_t>(c.size());
    const Member* __restrict mem = c.data();  // z is 0 in 2D, where pos[2] is taken as 0 too
    const double px = pos[0], py = pos[1], pz = m_dim == 3 ? pos[2] : 0.0;
    const double lx = m_period[0], ly = m_period[1], lz = m_period[2];
    const double range2 = m_range2;
    for (std::int64_t m = 0; m < len; ++m) {
        const double dx = fold(px - mem[m].x, lx), dy = fold(py - mem[m].y, ly), dz = fold(pz - mem[m].z, lz);
        const std::int32_t j = mem[m].id;
        out[count] = j;
        count += (dx * dx + dy * dy + dz * dz < range2) & (j != exclude);
    }
    return count;
}

std::int64_t NeighborList::query(const double* pos, std::int64_t exclude, std::int32_t* out) const {
    const std::int64_t nc = m_cellsPerSide;
    if (m_reach == 0) return scanCell(m_cells[0], pos, exclude, out, 0);  // one cell: all particles, ascending
    // The cell coordinates to visit along each axis, wrapped on periodic axes, left out beyond a wall, with the
    // squared gap between pos and the cell's slab along that axis. A cell whose gaps add up to the range or more
    // holds nobody within range and is skipped (the corners of the (2 reach + 1)^dim block: about a third of the
    // candidates at reach 2). Skipping only drops members that fail the range test, so the output is the same.
    std::int64_t cells[3][2 * kMaxReach + 1];
    double gap2[3][2 * kMaxReach + 1];
    int numCells[3] = {1, 1, 1};
    const int r = m_reach;
    const double side = m_boxLength / static_cast<double>(nc);
    for (int k = 0; k < m_dim; ++k) {
        const double u = pos[k] * nc / m_boxLength;  // in cells
        const auto home = static_cast<std::int64_t>(std::clamp(std::floor(u), 0.0, static_cast<double>(nc - 1)));
        numCells[k] = 0;
        for (int d = -r; d <= r; ++d) {
            std::int64_t v = home + d;
            // Gap to the slab [v, v + 1) in cells, less a margin for the rounding of the cell assignment.
            const double g = d > 0 ? static_cast<double>(v) - u : d < 0 ? u - static_cast<double>(v + 1) : 0.0;
            const double gap = std::max(0.0, g - 1e-9) * side;
            if (v < 0 || v >= nc) {
                if (!periodicAxis(m_boundary, k, m_dim)) continue;
                v = v < 0 ? v + nc : v - nc;
            }
            cells[k][numCells[k]] = v;
            gap2[k][numCells[k]] = gap * gap;
            ++numCells[k];
        }
    }
    if (m_dim == 2) {
        cells[2][0] = 0;
        gap2[2][0] = 0.0;
    }
    const double range2 = m_range2;
    std::int64_t count = 0;
    for (int c = 0; c < numCells[2]; ++c) {
        for (int b = 0; b < numCells[1]; ++b) {
            const double gzy = gap2[2][c] + gap2[1][b];
            if (gzy >= range2) continue;
            const std::int64_t rowBase = (cells[2][c] * nc + cells[1][b]) * nc;
            for (int a = 0; a < numCells[0]; ++a) {
                if (gzy + gap2[0][a] >= range2) continue;
                count = scanCell(m_cells[rowBase + cells[0][a]], pos, exclude, out, count);
            }
        }
    }
    return count;
}

void NeighborList::cellInsert(std::int64_t cell, std::int32_t j) {
    Cell& c = m_cells[cell];
    const auto at = std::lower_bound(c.begin(), c.end(), j, [](const Member& m, std::int32_t id) { return m.id < id; });
    c.insert(at, Member{m_ref[0][j], m_ref[1][j], m_ref[2][j], j, 0});
}

void NeighborList::cellErase(std::int64_t cell, std::int32_t j) {
    Cell& c = m_cells[cell];
    const auto at = std::lower_bound(c.begin(), c.end(), j, [](const Member& m, std::int32_t id) { return m.id < id; });
    c.erase(at);
}

void NeighborList::grow(std::int64_t atLeast) {
    const std::int64_t capacity = std::max<std::int64_t>(atLeast, m_capacity + m_capacity / 2) + kLanes;
    std::vector<std::int32_t> rows(m_n * capacity);
    for (std::int64_t i = 0; i < m_n; ++i) {
        std::copy_n(m_rows.data() + i * m_capacity, m_count[i], rows.data() + i * capacity);
    }
    m_rows.swap(rows);
    m_capacity = capacity;
}

void NeighborList::insert(std::int64_t row, std::int32_t j) {
    if (m_count[row] == m_capacity) grow(m_capacity + 1);
    std::int32_t* begin = m_rows.data() + row * m_capacity;
    std::int32_t* end = begin + m_count[row];
    std::int32_t* at = std::lower_bound(begin, end, j);
    std::memmove(at + 1, at, static_cast<std::size_t>(end - at) * sizeof(std::int32_t));
    *at = j;
    ++m_count[row];
}

void NeighborList::erase(std::int64_t row, std::int32_t j) {
    std::int32_t* begin = m_rows.data() + row * m_capacity;
    std::int32_t* end = begin + m_count[row];
    std::int32_t* at = std::lower_bound(begin, end, j);
    if (at == end || *at != j) return;  // unreachable while the rows are symmetric
    std::memmove(at, at + 1, static_cast<std::size_t>(end - at - 1) * sizeof(std::int32_t));
    --m_count[row];
}

void NeighborList::refresh(std::int64_t i, const double* pos, std::int32_t* found, std::int64_t foundCount) {
    const auto self = static_cast<std::int32_t>(i);
    std::sort(found, found + foundCount);
    const std::int32_t* newRow = found;
    // Both rows are sorted: walk them together and touch only the rows of particles that leave or join (a few
    // out of the ~100-200 neighbours), not every neighbour's row.
    {
        const std::int32_t* old = row(i);
        const std::int64_t oldCount = m_count[i];
        const std::int64_t newCount = foundCount;
        std::int64_t a = 0, b = 0;
        while (a < oldCount || b < newCount) {
            const std::int32_t u = a < oldCount ? old[a] : INT32_MAX;
            const std::int32_t v = b < newCount ? newRow[b] : INT32_MAX;
            if (u == v) {
                ++a;
                ++b;
            } else if (u < v) {
                erase(u, self);
                ++a;
            } else {
                insert(v, self);  // may grow (re-lay) the rows: `old` is re-read below
                ++b;
                old = row(i);
            }
        }
    }
    cellErase(m_cellOf[i], self);
    for (int k = 0; k < m_dim; ++k) m_ref[k][i] = pos[k];
    m_cellOf[i] = cellOf(pos);
    cellInsert(m_cellOf[i], self);
    const std::int64_t count = foundCount;
    if (count > m_capacity) grow(count);
    std::copy_n(newRow, count, m_rows.data() + i * m_capacity);
    m_count[i] = static_cast<std::int32_t>(count);
    ++m_refreshes;
}

void NeighborList::build(const double* x, const double* y, const double* z, std::int64_t n, int dim,
                         double boxLength, Boundary boundary, double range) {
    if (n > INT32_MAX) throw std::invalid_argument("too many particles for the neighbour list");
    m_n = n;
    m_dim = dim;
    m_boxLength = boxLength;
    m_boundary = boundary;
    m_range2 = range * range;
    for (int k = 0; k < 3; ++k) {
        m_period[k] = periodicAxis(boundary, k, dim) ? boxLength : std::numeric_limits<double>::infinity();
    }
    const double* coord[3] = {x, y, z};
    for (int k = 0; k < 3; ++k) {
        m_ref[k].assign(n, 0.0);
        if (k < dim) std::copy_n(coord[k], n, m_ref[k].data());
    }

    // Cells of side >= range / 2, scanning two cells each way, visit (5/6)^3 of the candidates that cells of side
    // >= range and one cell each way would (and a third of them where the latter get only 3-4 cells per side).
    // The 2 reach + 1 cells per axis must be distinct, otherwise one cell holds all.
    const auto perSide = static_cast<std::int64_t>(std::floor(boxLength / range));
    const auto perSideHalf = static_cast<std::int64_t>(std::floor(2.0 * boxLength / range));
    if (perSideHalf >= 5) {
        m_reach = 2;
        m_cellsPerSide = perSideHalf;
    } else if (perSide >= 3) {
        m_reach = 1;
        m_cellsPerSide = perSide;
    } else {
        m_reach = 0;
        m_cellsPerSide = 1;
    }
    const std::int64_t numCells = dim == 3 ? m_cellsPerSide * m_cellsPerSide * m_cellsPerSide
                                           : m_cellsPerSide * m_cellsPerSide;
    m_cells.assign(numCells, Cell{});
    m_cellOf.resize(n);
    for (std::int64_t i = 0; i < n; ++i) {  // ascending i: appending keeps every cell sorted
        const double p[3] = {m_ref[0][i], m_ref[1][i], m_ref[2][i]};
        m_cellOf[i] = cellOf(p);
        m_cells[m_cellOf[i]].push_back(Member{p[0], p[1], p[2], static_cast<std::int32_t>(i), 0});
    }

    // A first capacity from the mean density; rows that need more grow it.
    const double volume = dim == 3 ? boxLength * boxLength * boxLength : boxLength * boxLength;
    const double sphere = dim == 3 ? 4.0 / 3.0 * 3.14159265358979 * range * range * range
                                   : 3.14159265358979 * range * range;
    const auto expected = static_cast<std::int64_t>(std::min(static_cast<double>(n), 1.5 * n / volume * sphere));
    m_capacity = paddedSize(std::max<std::int64_t>(expected, 1)) + kLanes;
    m_rows.assign(n * m_capacity, 0);
    m_count.assign(n, 0);
    std::vector<std::int32_t> found(n);
    for (std::int64_t i = 0; i < n; ++i) {
        const double p[3] = {m_ref[0][i], m_ref[1][i], m_ref[2][i]};
        const std::int64_t count = query(p, i, found.data());
        std::sort(found.begin(), found.begin() + count);
        if (count > m_capacity) grow(count);
        std::copy_n(found.data(), count, m_rows.data() + i * m_capacity);
        m_count[i] = static_cast<std::int32_t>(count);
    }
    m_dirty = false;
    m_meanRowBytes = static_cast<std::int64_t>(meanCount() * sizeof(std::int32_t)) + 64;
    ++m_rebuilds;
}

}  // namespace vaepipe
