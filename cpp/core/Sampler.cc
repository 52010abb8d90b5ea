#include "Sampler.h"

#include "Energy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>
#include <stdexcept>

namespace vaepipe {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Random insertion gives up on a particle after this many tries and falls back to the lattice.
constexpr int kInsertionAttempts = 1000;

}  // namespace

Sampler::Sampler(const SystemParams& params, const Rng::State& rngState, double stepSize,
                 NeighborMode neighborMode, double neighborSkin, bool place, bool allowPairCache)
    : m_params(params),
      m_rng(rngState),
      m_stepSize(0.0),
      m_n(params.nParticles),
      m_dim(params.dim),
      m_autoSkin(neighborSkin == 0.0),
      m_skin(neighborSkin),
      m_neighborMode(neighborMode) {
    m_params.validate();
    if (!(neighborSkin >= 0.0) || !std::isfinite(neighborSkin)) {
        std::ostringstream msg;
        msg << "neighbor_skin must be a positive finite length (sigma), or 0 for automatic, got " << neighborSkin;
        throw std::invalid_argument(msg.str());
    }
    setStepSize(stepSize);  // also picks the automatic skin
    m_cutoff2 = m_params.hasCutoff() ? m_params.cutoff * m_params.cutoff
                                     : std::numeric_limits<double>::infinity();
    m_tail = m_params.tailEnergy();

    // NaN padding keeps the kernel's tail lanes out of the sums (see Kernel.h), with one extra block because
    // pairEnergy reads from offset pointers x + i + 1. In 2D the unused z of real particles is 0.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::int64_t padded = paddedSize(m_n) + kLanes;
    m_x.assign(padded, nan);
    m_y.assign(padded, nan);
    m_z.assign(padded, nan);
    if (m_dim == 2) std::fill(m_z.begin(), m_z.begin() + m_n, 0.0);

    if (neighborMode == NeighborMode::On && !m_params.hasCutoff()) {
        throw std::invalid_argument("neighbor_list='on' needs a cutoff; without one every pair interacts");
    }
    // The cache serves every run without the list, so "auto" keeps it even while the list is chosen: a smaller
    // step or a larger one can switch between them.
    m_useCache = allowPairCache && neighborMode != NeighborMode::On && m_n <= kMaxCachedParticles;
    chooseNeighborList();
    if (m_useCache) {
        m_stride = paddedSize(m_n);
        m_pairCache.assign(m_n * m_stride, 0.0);
        m_newPair.assign(m_stride, 0.0);
    }
    if (place) randomize();
}

double Sampler::expectedNeighbors(double skin) const {
    const double range = m_params.cutoff + skin;
    const double rho = m_n / m_params.volume();
    return m_dim == 3 ? rho * 4.0 / 3.0 * kPi * range * range * range : rho * kPi * range * range;
}

void Sampler::chooseNeighborList() {
    const bool before = m_useList;
    if (m_neighborMode == NeighborMode::Auto && m_params.hasCutoff()) {
        // A list pays off when it holds clearly fewer particles than all pairs would visit: under half of them
        // against plain all pairs, and under kListVersusCache of them against the pair cache, which computes
        // only the new pair energies (measured with the refresh ahead: 210 listed neighbours ran at 0.97x the
        // cache at N = 500 and 1.08x at N = 560, so the crossover is near 210 / 520 = 0.40).
        // Decided again when the automatic skin follows a new step, so a sampler built with the default step
        // on a dense liquid takes the list once tune_step_size has shrunk the step.
        const double share = m_useCache ? kListVersusCache : 0.5;
        m_useList = expectedNeighbors(m_skin) < share * static_cast<double>(m_n);
    } else {
        m_useList = m_neighborMode == NeighborMode::On;
    }
    if (m_useList != before) m_list.markDirty();

    // Captured here, never from worker threads (this runs under the GIL). The fastest instruction set depends
    // on how many pairs a kernel call spans (see kernelsFor); every table gives the same bits.
    const auto pairsPerCall =
        m_useList ? std::min<std::int64_t>(m_n, static_cast<std::int64_t>(expectedNeighbors(m_skin))) : m_n;
    const KernelTable& table = kernelsFor(pairsPerCall);
    const int d3 = m_dim == 3 ? 1 : 0;
    const int column = boundaryIndex(m_params.boundary);
    m_kernel = table.pairSums[d3][column];
    m_openKernel = table.pairSums[d3][boundaryIndex(Boundary::Reflect)];
    m_gather = table.gather;
    m_pairEnergies = table.pairEnergies[d3][column];
    m_kernelName = table.name;
}

void Sampler::fillPairCache() {
    m_cacheValid = true;
    for (std::int64_t i = 0; i < m_n; ++i) {
        const double pos[3] = {m_x[i], m_y[i], m_z[i]};
        pairEnergiesAllPairs(i, pos, m_pairCache.data() + i * m_stride, m_newPair.data());  // oldSum unused
    }
}

void Sampler::setStepSize(double stepSize) {
    if (!(stepSize > 0.0) || stepSize > 0.5 * m_params.boxLength) {
        std::ostringstream msg;
        msg << "step_size must be in (0, box_length/2 = " << 0.5 * m_params.boxLength << "] sigma, got "
            << stepSize;
        throw std::invalid_argument(msg.str());
    }
    m_stepSize = stepSize;
    // The skin follows the step: a particle leaves its skin/2 sphere after a few accepted moves whatever the
    // step, so the list's refresh rate stays about the same while its length follows the step.
    if (m_autoSkin) {
        const double skin = autoSkin(stepSize);
        if (skin != m_skin) {
            m_skin = skin;
            m_list.markDirty();
            if (m_kernel != nullptr) chooseNeighborList();  // not before the constructor has made its choice
        }
    }
}

double Sampler::autoSkin(double stepSize) { return std::clamp(kSkinPerStep * stepSize, kMinSkin, kMaxSkin); }

double Sampler::separation2(const double* a, const double* b) const {
    const double L = m_params.boxLength;
    double d2 = 0.0;
    for (int k = 0; k < m_dim; ++k) {
        double d = a[k] - b[k];
        if (periodicAxis(m_params.boundary, k, m_dim)) d -= L * std::nearbyint(d / L);
        d2 += d * d;
    }
    return d2;
}

bool Sampler::placeRandomly(std::vector<double>& out) {
    const double L = m_params.boxLength;
    const Boundary boundary = m_params.boundary;
    const double min2 = kMinSeparation * kMinSeparation;
    // A grid of cells no smaller than the separation: a candidate only meets particles in adjacent cells.
    const auto nc = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(L / kMinSeparation)));
    const std::int64_t numCells = m_dim == 3 ? nc * nc * nc : nc * nc;
    std::vector<std::vector<std::int64_t>> cells(numCells);
    auto cellCoord = [&](double v) { return std::clamp<std::int64_t>(static_cast<std::int64_t>(v * nc / L), 0, nc - 1); };
    const int dim = m_dim;

    for (std::int64_t i = 0; i < m_n; ++i) {
        bool placed = false;
        for (int attempt = 0; attempt < kInsertionAttempts && !placed; ++attempt) {
            double p[3] = {0.0, 0.0, 0.0};
            for (int k = 0; k < m_dim; ++k) p[k] = m_rng.uniform() * L;
            std::int64_t c[3] = {0, 0, 0};
            for (int k = 0; k < m_dim; ++k) c[k] = cellCoord(p[k]);
            bool clash = false;
            const int zr = m_dim == 3 ? 1 : 0;
            for (int dz = -zr; dz <= zr && !clash; ++dz) {
                for (int dy = -1; dy <= 1 && !clash; ++dy) {
                    for (int dx = -1; dx <= 1 && !clash; ++dx) {
                        std::int64_t cc[3] = {c[0] + dx, c[1] + dy, c[2] + dz};
                        bool inside = true;
                        for (int k = 0; k < m_dim; ++k) {
                            if (cc[k] < 0 || cc[k] >= nc) {
                                if (!periodicAxis(boundary, k, m_dim)) inside = false;
                                cc[k] = (cc[k] + nc) % nc;
                            }
                        }
                        // With fewer than 3 cells per side, neighbour offsets alias; scan the lot then.
                        if (!inside && nc >= 3) continue;
                        std::int64_t cell = 0;
                        for (int k = m_dim - 1; k >= 0; --k) cell = cell * nc + cc[k];
                        for (std::int64_t j : cells[cell]) {
                            if (separation2(p, &out[j * dim]) < min2) {
                                clash = true;
                                break;
                            }
                        }
                    }
                }
            }
            if (nc < 3) {
                // Re-check against everyone: cheap at the sizes where nc < 3 happens.
                clash = false;
                for (std::int64_t j = 0; j < i && !clash; ++j) clash = separation2(p, &out[j * dim]) < min2;
            }
            if (!clash) {
                for (int k = 0; k < m_dim; ++k) out[i * dim + k] = p[k];
                std::int64_t cell = 0;
                for (int k = m_dim - 1; k >= 0; --k) cell = cell * nc + c[k];
                cells[cell].push_back(i);
                placed = true;
            }
        }
        if (!placed) return false;
    }
    return true;
}

void Sampler::placeOnLattice(std::vector<double>& out) {
    const double L = m_params.boxLength;
    auto perSide = static_cast<std::int64_t>(std::ceil(std::pow(static_cast<double>(m_n), 1.0 / m_dim) - 1e-9));
    std::int64_t sites = 1;
    for (int k = 0; k < m_dim; ++k) sites *= perSide;
    if (sites < m_n) ++perSide;
    const double spacing = L / static_cast<double>(perSide);
    if (spacing < kMinLatticeSpacing) {
        const auto fit = static_cast<std::int64_t>(std::floor(L / kMinLatticeSpacing));
        std::int64_t maxN = 1;
        for (int k = 0; k < m_dim; ++k) maxN *= fit;
        std::ostringstream msg;
        msg << "n_particles=" << m_n << " cannot be placed in a box of side box_length=" << L
            << " without overlaps: random insertion jammed, and a simple lattice would put neighbours "
            << spacing << " sigma apart (< " << kMinLatticeSpacing << "). At most " << maxN
            << " particles fit; use fewer particles or a larger box";
        throw std::invalid_argument(msg.str());
    }
    // The height (last coordinate) varies slowest, so a partly filled lattice fills from the floor up.
    for (std::int64_t i = 0; i < m_n; ++i) {
        std::int64_t rest = i;
        for (int k = 0; k < m_dim; ++k) {
            out[i * m_dim + k] = (static_cast<double>(rest % perSide) + 0.5) * spacing;
            rest /= perSide;
        }
    }
}

void Sampler::randomize() {
    // Placed into a scratch copy: if even the lattice cannot hold N, the sampler keeps its configuration and
    // its random stream.
    const Rng::State saved = m_rng.state();
    std::vector<double> placed(m_n * m_dim, 0.0);
    try {
        if (!placeRandomly(placed)) placeOnLattice(placed);
        commitPositions(placed);
    } catch (...) {
        m_rng.setState(saved);
        throw;
    }
}

void Sampler::setPositions(const std::vector<double>& rowMajor) {
    if (static_cast<std::int64_t>(rowMajor.size()) != m_n * m_dim) {
        std::ostringstream msg;
        msg << "positions must have n_particles * dim = " << m_n * m_dim << " values, got " << rowMajor.size();
        throw std::invalid_argument(msg.str());
    }
    const double L = m_params.boxLength;
    std::vector<double> p(rowMajor);
    for (std::size_t v = 0; v < p.size(); ++v) {
        if (!(p[v] >= 0.0 && p[v] <= L)) {
            std::ostringstream msg;
            msg << "positions[" << v / m_dim << ", " << v % m_dim << "] = " << p[v] << " is outside the box [0, "
                << L << "]";
            throw std::invalid_argument(msg.str());
        }
        // A periodic axis is half-open; L is the same point as 0.
        if (periodicAxis(m_params.boundary, static_cast<int>(v % m_dim), m_dim) && p[v] >= L) {
            p[v] -= L;
        }
    }
    commitPositions(p);
}

void Sampler::commitPositions(const std::vector<double>& rowMajor) {
    // Checked on a copy first, so a rejected configuration leaves the sampler as it was.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> x(m_x.size(), nan), y(m_y.size(), nan), z(m_z.size(), m_dim == 3 ? nan : 0.0);
    if (m_dim == 2) std::fill(z.begin() + m_n, z.end(), nan);
    double* coord[3] = {x.data(), y.data(), z.data()};
    for (std::int64_t i = 0; i < m_n; ++i) {
        for (int k = 0; k < m_dim; ++k) coord[k][i] = rowMajor[i * m_dim + k];
    }
    const double pair = pairEnergy(m_kernel, x.data(), y.data(), z.data(), m_n, m_params.boxLength, m_cutoff2);
    if (!std::isfinite(pair)) {
        // Find the offending pair for the message; this only runs on the error path.
        std::int64_t bi = 0, bj = 1;
        double best = std::numeric_limits<double>::infinity();
        for (std::int64_t i = 0; i < m_n; ++i) {
            for (std::int64_t j = i + 1; j < m_n; ++j) {
                const double d2 = separation2(&rowMajor[i * m_dim], &rowMajor[j * m_dim]);
                if (d2 < best) {
                    best = d2;
                    bi = i;
                    bj = j;
                }
            }
        }
        std::ostringstream msg;
        msg << "positions of particles " << bi << " and " << bj << " are " << std::sqrt(best)
            << " sigma apart, so the LJ energy is not finite; separate overlapping particles";
        throw std::invalid_argument(msg.str());
    }
    m_x.swap(x);
    m_y.swap(y);
    m_z.swap(z);
    if (m_useList) syncPacked();
    m_energy = pair + gravityEnergy(m_dim == 3 ? m_z.data() : m_y.data(), m_n, m_params.gamma);
    if (m_useList) m_list.markDirty();
    if (m_useCache) fillPairCache();  // even while the list runs: cheap next to a placement, and keeps it simple
}

std::vector<double> Sampler::positions() const {
    std::vector<double> out(m_n * m_dim);
    const double* coord[3] = {m_x.data(), m_y.data(), m_z.data()};
    for (std::int64_t i = 0; i < m_n; ++i) {
        for (int k = 0; k < m_dim; ++k) out[i * m_dim + k] = coord[k][i];
    }
    return out;
}

double Sampler::recomputeEnergy() const {
    return pairEnergy(m_kernel, m_x.data(), m_y.data(), m_z.data(), m_n, m_params.boxLength, m_cutoff2) +
           gravityEnergy(m_dim == 3 ? m_z.data() : m_y.data(), m_n, m_params.gamma) + m_tail;
}

[[gnu::always_inline]] inline KernelArgs Sampler::allPairsArgs(const double* oldPos, const double* newPos) const {
    KernelArgs a{};
    a.x = m_x.data();
    a.y = m_y.data();
    a.z = m_z.data();
    a.count = m_n;
    for (int k = 0; k < 3; ++k) {
        a.oldPos[k] = oldPos[k];
        a.newPos[k] = newPos[k];
    }
    a.boxLength = m_params.boxLength;
    a.cutoff2 = m_cutoff2;
    return a;
}

// In both all-pairs calls the particle's own entry is excluded by a NaN for the duration of the call (see
// Kernel.h).
[[gnu::always_inline]] inline PairSums Sampler::pairSumsAllPairs(std::int64_t i, const double* oldPos, const double* newPos) {
    const KernelArgs a = allPairsArgs(oldPos, newPos);
    const double saved = m_x[i];
    m_x[i] = std::numeric_limits<double>::quiet_NaN();
    const PairSums sums = m_kernel(a);
    m_x[i] = saved;
    return sums;
}

[[gnu::always_inline]] inline PairSums Sampler::pairEnergiesAllPairs(std::int64_t i, const double* newPos, double* out, const double* oldRow) {
    const KernelArgs a = allPairsArgs(newPos, newPos);
    const double saved = m_x[i];
    m_x[i] = std::numeric_limits<double>::quiet_NaN();
    const PairSums sums = m_pairEnergies(a, out, oldRow);
    m_x[i] = saved;
    return sums;
}

PairSums Sampler::pairSumsNeighbors(std::int64_t i, const double* oldPos, const double* newPos) {
    return pairSumsIndexed(m_list.row(i), m_list.count(i), oldPos, newPos);
}

PairSums Sampler::pairSumsIndexed(const std::int32_t* idx, std::int64_t count, const double* oldPos,
                                  const double* newPos) {
    const double L = m_params.boxLength;
    if (static_cast<std::int64_t>(m_gx.size()) < paddedSize(count)) {
        const std::int64_t cap = paddedSize(std::max(count, m_list.capacity()));
        m_gx.assign(cap, 0.0);
        m_gy.assign(cap, 0.0);
        m_gz.assign(cap, 0.0);
        m_packed.assign(4 * cap, 0.0);
    }
    // Periodic: gather the neighbours as their images nearest the old position, and put the trial position
    // next to the old one, so the kernel needs no minimum image (about half its work). A pair inside the cutoff
    // at the trial position has every coordinate difference below cutoff + step <= L/2 at the old position, so
    // the image nearest the old position is the one that counts; pairs beyond the cutoff add 0 whichever image
    // is used. With a larger step the periodic kernel takes the minimum image pair by pair.
    const Boundary boundary = m_params.boundary;
    const bool unwrap = boundary != Boundary::Reflect && m_params.cutoff + m_stepSize <= 0.5 * L;
    double* dst[3] = {m_gx.data(), m_gy.data(), m_gz.data()};
    const double inf = std::numeric_limits<double>::infinity();
    double half[3] = {inf, inf, inf};
    KernelArgs a{};
    for (int k = 0; k < m_dim; ++k) {
        const bool near = unwrap && periodicAxis(boundary, k, m_dim);
        if (near) half[k] = 0.5 * L;
        a.oldPos[k] = oldPos[k];
        const double d = newPos[k] - oldPos[k];
        a.newPos[k] = !near ? newPos[k] : d > 0.5 * L ? newPos[k] - L : d < -0.5 * L ? newPos[k] + L : newPos[k];
    }
    m_gather(m_xyz.data(), idx, count, dst, oldPos, half, L, m_packed.data());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::int64_t m = count; m < paddedSize(count); ++m) m_gx[m] = nan;
    a.x = m_gx.data();
    a.y = m_gy.data();
    a.z = m_gz.data();
    a.count = count;
    a.boxLength = L;
    a.cutoff2 = m_cutoff2;
    return unwrap ? m_openKernel(a) : m_kernel(a);
}

std::vector<double> Sampler::neighborReference() const {
    return m_useList && !m_list.dirty() ? m_list.reference() : std::vector<double>{};
}

void Sampler::setNeighborReference(const std::vector<double>& rowMajor) {
    if (!m_useList) return;
    if (rowMajor.empty()) {
        m_list.markDirty();
        return;
    }
    if (static_cast<std::int64_t>(rowMajor.size()) != m_n * m_dim) {
        throw std::invalid_argument("neighbor reference must have n_particles * dim values");
    }
    for (double v : rowMajor) {
        if (!(v >= 0.0 && v <= m_params.boxLength)) {
            throw std::invalid_argument("neighbor reference positions must be finite and inside [0, box_length]");
        }
    }
    std::vector<double> x(m_n), y(m_n), z(m_n, 0.0);
    double* coord[3] = {x.data(), y.data(), z.data()};
    for (std::int64_t i = 0; i < m_n; ++i) {
        for (int k = 0; k < m_dim; ++k) coord[k][i] = rowMajor[i * m_dim + k];
    }
    buildNeighborList(x.data(), y.data(), z.data());
}

void Sampler::prefetchNeighbors(std::int64_t i) const {
    m_list.prefetchRow(i);
    __builtin_prefetch(m_xyz.data() + 4 * i);
    __builtin_prefetch(&m_x[i]);
    __builtin_prefetch(&m_y[i]);
    __builtin_prefetch(&m_z[i]);
}

void Sampler::syncPacked() {
    m_xyz.assign(4 * m_n, 0.0);
    const double* coord[3] = {m_x.data(), m_y.data(), m_z.data()};
    for (std::int64_t i = 0; i < m_n; ++i) {
        for (int k = 0; k < m_dim; ++k) m_xyz[4 * i + k] = coord[k][i];
    }
}

void Sampler::rebuildNeighborList() { buildNeighborList(m_x.data(), m_y.data(), m_z.data()); }

void Sampler::buildNeighborList(const double* x, const double* y, const double* z) {
    m_list.build(x, y, z, m_n, m_dim, m_params.boxLength, m_params.boundary, m_params.cutoff + m_skin);
    m_farRow.resize(m_n);
    syncPacked();  // moves made without the list (it steps aside in "auto") do not keep m_xyz
    const std::int64_t cap = paddedSize(m_list.capacity());
    if (static_cast<std::int64_t>(m_gx.size()) < cap) {
        m_gx.assign(cap, 0.0);
        m_gy.assign(cap, 0.0);
        m_gz.assign(cap, 0.0);
        m_packed.assign(4 * cap, 0.0);
    }
}

// The move loop is compiled per (dimension, boundary, neighbour list) so that none of these is a branch in the
// hot path.
template <int Dim, Boundary B, bool UseList, bool UseCache>
void Sampler::moves(std::int64_t count) {
    const double L = m_params.boxLength;
    const double step = m_stepSize;
    const double beta = 1.0 / m_params.temperature;
    const double fourGamma = 4.0 * m_params.gamma;
    const double halfSkin2 = 0.25 * m_skin * m_skin;
    const auto n = static_cast<std::uint64_t>(m_n);
    double* coord[3] = {m_x.data(), m_y.data(), m_z.data()};
    // A local copy keeps the generator's state in registers instead of reloading it through `this`.
    Rng rng = m_rng;

    for (std::int64_t m = 0; m < count; ++m) {
        if constexpr (UseList) {
            if (m_list.dirty()) rebuildNeighborList();
        }
        const auto i = static_cast<std::int64_t>(rng.below(n));
        double oldPos[3] = {m_x[i], m_y[i], m_z[i]};
        double newPos[3] = {oldPos[0], oldPos[1], oldPos[2]};
        for (int k = 0; k < Dim; ++k) {
            double v = oldPos[k] + rng.uniform(-step, step);
            if (periodicAxis(B, k, Dim)) {
                if (v < 0.0) v += L;
                if (v >= L) v -= L;
            } else {
                // Mirror at the walls: the proposal stays symmetric, so detailed balance holds up to the wall.
                if (v < 0.0) v = -v;
                if (v > L) v = 2.0 * L - v;
            }
            newPos[k] = v;
        }
        if constexpr (UseList) {
            // The next move's particle is one of two, depending on whether this move draws an acceptance number:
            // fetch both rows and records now, so their cache misses overlap this move's work (at large N the
            // rows live in DRAM). Copies of the generator: the stream itself is untouched.
            Rng peek = rng;
            prefetchNeighbors(static_cast<std::int64_t>(Rng(peek).below(n)));
            peek.next();
            prefetchNeighbors(static_cast<std::int64_t>(peek.below(n)));
        }

        PairSums sums;
        bool farFromBuild = false;
        std::int64_t farCount = 0;
        if constexpr (UseCache) {
            sums = pairEnergiesAllPairs(i, newPos, m_newPair.data(), m_pairCache.data() + i * m_stride);
        } else if constexpr (UseList) {
            farFromBuild = m_list.displacement2(i, newPos) > halfSkin2;
            if (farFromBuild) {
                // The particle is about to leave its skin/2 sphere: move its reference to where it is now (a
                // refresh at the old position), after which this trial and the next ones are near again. Pricing
                // the far trial through a query of the trial position instead (and refreshing only if it is
                // accepted) left the particle at the edge of its sphere, where about four in five of its trials
                // were far again and each paid a query: 3.4 % of moves at the dense liquid (N = 4000), against
                // 1.24 % refreshes (one query each) now and no far trials. Same-run speed-up 3-10 % at N = 500 to
                // 32 000, docs/benchmarks.md.
                const std::int64_t count = m_list.query(oldPos, i, m_farRow.data());
                m_list.refresh(i, oldPos, m_farRow.data(), count);
                farFromBuild = m_list.displacement2(i, newPos) > halfSkin2;
            }
            // A trial beyond skin/2 of the particle's reference may meet particles its row lacks: its new sum
            // goes over the particles whose references lie within cutoff + skin of it (everyone within the
            // cutoff, since they are within skin/2 of theirs), which is the particle's new row if accepted.
            if (farFromBuild) {
                farCount = m_list.query(newPos, i, m_farRow.data());
                const PairSums before = pairSumsIndexed(m_list.row(i), m_list.count(i), oldPos, oldPos);
                const PairSums after = pairSumsIndexed(m_farRow.data(), farCount, newPos, newPos);
                sums = PairSums{before.oldSum, after.newSum};
                ++m_farTrials;
            } else {
                sums = pairSumsNeighbors(i, oldPos, newPos);
            }
        } else {
            sums = pairSumsAllPairs(i, oldPos, newPos);
        }
        const double dU = (sums.newSum - sums.oldSum) + fourGamma * (newPos[Dim - 1] - oldPos[Dim - 1]);

        // Metropolis: accept with probability min(1, exp(-dU/T)). A NaN dU fails both tests and is rejected.
        if (dU <= 0.0 || rng.uniform() < std::exp(-beta * dU)) {
            for (int k = 0; k < Dim; ++k) coord[k][i] = newPos[k];
            if constexpr (UseList) {
                for (int k = 0; k < Dim; ++k) m_xyz[4 * i + k] = newPos[k];
            }
            m_energy += dU;
            ++m_accepted;
            // Escaping a near-overlap subtracts two huge numbers; the running sum would keep their rounding
            // error for ever, so start it afresh (depends only on the trajectory, hence reproducible).
            if (!(std::abs(dU) < kResyncEnergy)) m_energy = recomputeEnergy() - m_tail;
            if constexpr (UseCache) {
                const double* __restrict fresh = m_newPair.data();
                double* __restrict row = m_pairCache.data() + i * m_stride;
                for (std::int64_t j = 0; j < m_stride; ++j) row[j] = fresh[j];
                // The column: strided single stores, unrolled because this runs on every accepted move.
                double* __restrict column = m_pairCache.data() + i;
                const std::int64_t stride = m_stride;
                std::int64_t j = 0;
                for (; j + 4 <= m_n; j += 4) {
                    column[j * stride] = fresh[j];
                    column[(j + 1) * stride] = fresh[j + 1];
                    column[(j + 2) * stride] = fresh[j + 2];
                    column[(j + 3) * stride] = fresh[j + 3];
                }
                for (; j < m_n; ++j) column[j * stride] = fresh[j];
            }
            if constexpr (UseList) {
                if (farFromBuild) m_list.refresh(i, newPos, m_farRow.data(), farCount);
            }
        }
    }
    m_rng = rng;
    m_attempted += static_cast<std::uint64_t>(count);
}

void Sampler::run(std::int64_t sweeps) {
    if (sweeps < 0) throw std::invalid_argument("sweeps must be >= 0");
    const std::int64_t count = sweeps * m_n;
    // Three modes: neighbour list, pair-energy cache, or plain all pairs (large N without a useful cutoff).
    // In "auto" mode a step that is large next to the skin (a dilute gas) sends most trials past the skin, each
    // priced over all pairs and each accepted one forcing a rebuild: plain all pairs is far cheaper then.
    const bool list = m_useList && (m_neighborMode != NeighborMode::Auto || m_stepSize <= 0.25 * m_skin);
    if (m_useList && !list) m_list.markDirty();  // moves made without the list invalidate it
    if (list && sweeps > 0) m_cacheValid = false;  // ... and moves made with it, the pair cache
    if (!list && m_useCache && !m_cacheValid) fillPairCache();
    auto dispatch = [&](auto dim, auto boundary) {
        constexpr int D = decltype(dim)::value;
        constexpr Boundary B = decltype(boundary)::value;
        if (list) {
            moves<D, B, true, false>(count);
        } else if (m_useCache) {
            moves<D, B, false, true>(count);
        } else {
            moves<D, B, false, false>(count);
        }
    };
    auto byBoundary = [&](auto dim) {
        switch (m_params.boundary) {
            case Boundary::Reflect: dispatch(dim, std::integral_constant<Boundary, Boundary::Reflect>{}); break;
            case Boundary::Periodic: dispatch(dim, std::integral_constant<Boundary, Boundary::Periodic>{}); break;
            case Boundary::Slab: dispatch(dim, std::integral_constant<Boundary, Boundary::Slab>{}); break;
        }
    };
    m_dim == 3 ? byBoundary(std::integral_constant<int, 3>{}) : byBoundary(std::integral_constant<int, 2>{});
}

void Sampler::runTrace(std::int64_t sweeps, std::int64_t every, double* out) {
    if (every <= 0) throw std::invalid_argument("every must be >= 1");
    const std::int64_t records = sweeps / every;
    for (std::int64_t r = 0; r < records; ++r) {
        run(every);
        out[r] = energy();
    }
    run(sweeps - records * every);
}

void Sampler::sample(std::int64_t count, std::int64_t interval, double* positionsOut, double* energyOut) {
    if (interval <= 0) throw std::invalid_argument("interval must be >= 1");
    for (std::int64_t s = 0; s < count; ++s) {
        run(interval);
        const std::vector<double> p = positions();
        std::copy(p.begin(), p.end(), positionsOut + s * m_n * m_dim);
        energyOut[s] = recomputeEnergy();
    }
}

}  // namespace vaepipe
