// Verlet neighbour list with a skin (Verlet 1967; Allen & Tildesley, ch. 5), kept up to date particle by particle
// through a cell grid of reference positions.
//
// Every particle i has a reference position ref_i, and the pair (i, j) is listed exactly when
// |ref_i - ref_j| < range = cutoff + skin (minimum image on the periodic axes). As long as every particle stays
// within skin/2 of its own reference, every pair now inside the cutoff is listed. A particle that would leave its
// skin/2 sphere gets a new reference and a new row (refresh), and its entry in the rows of its old and new
// neighbours is removed or inserted; nobody else moves. So a move needs only the listed neighbours (about
// rho (4/3) pi range^3 of them), and there is no global rebuild whose frequency would grow with N: with a global
// rebuild, the fastest of N particles decides when everyone pays.
//
// Rows are kept sorted by particle index, so the list is a function of the reference positions alone (not of
// the order of the refreshes that led there): restoring the references restores the list bit for bit.
#pragma once

#include "Boundary.h"

#include <cstdint>
#include <vector>

namespace vaepipe {

class NeighborList {
public:
    // Builds every row from reference positions x, y, z (z ignored when dim = 2) of n particles in a box of side L;
    // the boundary says which axes wrap (see periodicAxis in Kernel.h).
    void build(const double* x, const double* y, const double* z, std::int64_t n, int dim, double boxLength,
               Boundary boundary, double range);

    // Writes the indices j != exclude with |pos - ref_j| < range to out (room for n entries) and returns their
    // count. The order is canonical (a function of pos and the references only: cells in a fixed order, ascending
    // within a cell), so sums over them are reproducible.
    std::int64_t query(const double* pos, std::int64_t exclude, std::int32_t* out) const;
    // Moves particle i's reference to pos; found[0, foundCount) must be what query(pos, i, found) wrote (it gets
    // sorted in place).
    void refresh(std::int64_t i, const double* pos, std::int32_t* found, std::int64_t foundCount);

    const std::int32_t* row(std::int64_t i) const { return m_rows.data() + i * m_capacity; }
    // Asks the cache for the start of row i (as long as a mean row) without reading anything of it.
    void prefetchRow(std::int64_t i) const {
        const char* p = reinterpret_cast<const char*>(row(i));
        for (std::int64_t b = 0; b < m_meanRowBytes; b += 64) __builtin_prefetch(p + b);
    }
    std::int64_t count(std::int64_t i) const { return m_count[i]; }
    // Longest possible row: gather buffers of this size (padded) hold any row.
    std::int64_t capacity() const { return m_capacity; }
    double meanCount() const;

    // Squared displacement of a position from particle i's reference position.
    double displacement2(std::int64_t i, const double* pos) const;

    bool dirty() const { return m_dirty; }
    // Reference positions, row-major (n, dim).
    std::vector<double> reference() const;
    void markDirty() { m_dirty = true; }
    // Full builds, and single-particle refreshes.
    std::uint64_t rebuilds() const { return m_rebuilds; }
    std::uint64_t refreshes() const { return m_refreshes; }

private:
    std::int64_t cellOf(const double* pos) const;
    void insert(std::int64_t row, std::int32_t j);
    void erase(std::int64_t row, std::int32_t j);
    void grow(std::int64_t atLeast);

    std::int64_t m_n = 0;
    int m_dim = 3;
    double m_boxLength = 0.0;
    Boundary m_boundary = Boundary::Reflect;
    double m_range2 = 0.0;
    double m_period[3] = {0.0, 0.0, 0.0};  // L on the periodic axes, +inf on the others (for the fold)

    std::vector<double> m_ref[3];  // reference positions, structure of arrays (z zeros in 2D)
    std::int64_t m_capacity = 0;
    std::int64_t m_meanRowBytes = 0;
    std::vector<std::int32_t> m_rows;  // row i at [i * m_capacity, i * m_capacity + m_count[i])
    std::vector<std::int32_t> m_count;

    // Cells of side >= range / reach: a query visits the (2 reach + 1)^dim cells around its own (the one cell
    // when reach is 0). Each cell keeps its members ascending, with their reference coordinates alongside so that the
    // distance loop of a query runs over contiguous memory.
    // One record per member (32 bytes), so a query touches one array per cell rather than four.
    struct Member {
        double x, y, z;
        std::int32_t id;
        std::int32_t unused;
    };
    using Cell = std::vector<Member>;
    void cellInsert(std::int64_t cell, std::int32_t j);
    void cellErase(std::int64_t cell, std::int32_t j);
    std::int64_t scanCell(const Cell& c, const double* pos, std::int64_t exclude, std::int32_t* out,
                          std::int64_t count) const;
    static constexpr int kMaxReach = 4;
    std::int64_t m_cellsPerSide = 1;
    int m_reach = 0;  // cells scanned each way (0: one cell), at most kMaxReach
    std::vector<Cell> m_cells;
    std::vector<std::int64_t> m_cellOf;

    bool m_dirty = true;
    std::uint64_t m_rebuilds = 0;
    std::uint64_t m_refreshes = 0;
};

}  // namespace vaepipe
