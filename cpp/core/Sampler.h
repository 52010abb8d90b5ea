// Metropolis Monte Carlo of Lennard-Jones particles under gravity in a closed (reflecting) or periodic box.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "Kernel.h"
#include "NeighborList.h"
#include "Rng.h"
#include "System.h"

namespace vaepipe {

enum class NeighborMode { Auto, On, Off };

class Sampler {
public:
    Sampler(const SystemParams& params, const Rng::State& rngState, double stepSize,
            NeighborMode neighborMode = NeighborMode::Auto, double neighborSkin = 0.0, bool place = true,
            bool allowPairCache = true);

    // The Verlet skin chosen for a step size when neighborSkin is 0 ("automatic"), sigma: kSkinPerStep * step,
    // within [kMinSkin, kMaxSkin].
    static double autoSkin(double stepSize);

    const SystemParams& params() const { return m_params; }

    // Random non-overlapping placement (no pair closer than kMinSeparation) drawn from this sampler's stream,
    // with a simple-lattice fallback when random insertion jams. Throws std::invalid_argument if even the
    // lattice would overlap.
    void randomize();

    // Row-major (n_particles, dim) coordinates. setPositions throws std::invalid_argument for non-finite values
    // or values outside [0, L].
    void setPositions(const std::vector<double>& rowMajor);
    std::vector<double> positions() const;

    // One sweep = n_particles single-particle trial moves.
    void run(std::int64_t sweeps);
    // Runs `sweeps` sweeps and writes the total energy after every `every` sweeps to out[sweeps / every].
    void runTrace(std::int64_t sweeps, std::int64_t every, double* out);
    // `count` times: `interval` sweeps, then store positions (row-major) and the recomputed total energy.
    void sample(std::int64_t count, std::int64_t interval, double* positionsOut, double* energyOut);

    // Total potential energy / eps from the incremental bookkeeping (tail correction included).
    double energy() const { return m_energy + m_tail; }
    // The same from scratch, summed in a fixed order that does not depend on the run's history.
    double recomputeEnergy() const;
    // For exact restarts: the bookkeeping value without the constant tail correction.
    double rawEnergy() const { return m_energy; }
    void setRawEnergy(double raw) { m_energy = raw; }
    // The neighbour list's reference positions (row-major); empty when no list is in use or it is due for a
    // rebuild. The list is a function of them alone, so restoring them restores it and a restart continues bit
    // for bit.
    std::vector<double> neighborReference() const;
    void setNeighborReference(const std::vector<double>& rowMajor);

    double stepSize() const { return m_stepSize; }
    void setStepSize(double stepSize);

    std::uint64_t attempted() const { return m_attempted; }
    std::uint64_t accepted() const { return m_accepted; }
    void setCounters(std::uint64_t attempted, std::uint64_t accepted) {
        m_attempted = attempted;
        m_accepted = accepted;
    }

    const Rng::State& rngState() const { return m_rng.state(); }
    void setRngState(const Rng::State& state) { m_rng.setState(state); }

    bool usesNeighborList() const { return m_useList; }
    bool usesPairCache() const { return m_useCache && !m_useList; }
    double neighborSkin() const { return m_skin; }
    bool autoSkin() const { return m_autoSkin; }
    std::uint64_t neighborRebuilds() const { return m_list.rebuilds(); }
    // Single-particle refreshes of the list (a particle accepted beyond skin/2 of its reference).
    std::uint64_t neighborRefreshes() const { return m_list.refreshes(); }
    // Trial moves still beyond skin/2 of the particle's reference after its reference was moved to its current
    // position (see moves: only with steps large next to the skin), priced through a cell query of the trial
    // position.
    std::uint64_t farTrials() const { return m_farTrials; }
    // Mean list length now.
    double meanNeighbors() const { return m_list.meanCount(); }
    const char* kernelName() const { return m_kernelName; }

    // Smallest pair distance allowed by the random placement, in sigma.
    static constexpr double kMinSeparation = 0.9;
    // Smallest lattice spacing the fallback accepts, in sigma.
    static constexpr double kMinLatticeSpacing = 0.8;
    // An accepted |dU| above this (eps) restarts the energy bookkeeping from scratch.
    static constexpr double kResyncEnergy = 1e6;
    // Largest N for the pair-energy cache (N^2 doubles: 8 MB at this size).
    static constexpr std::int64_t kMaxCachedParticles = 1024;
    // Automatic skin (see autoSkin): measured optimum on the dense LJ liquid, docs/benchmarks.md.
    static constexpr double kSkinPerStep = 8.0;
    static constexpr double kMinSkin = 0.3;
    static constexpr double kMaxSkin = 1.5;
    // "auto" takes the list over the pair cache when it holds fewer than this share of the particles.
    static constexpr double kListVersusCache = 0.40;

private:
    template <int Dim, Boundary B, bool UseList, bool UseCache>
    void moves(std::int64_t count);
    void fillPairCache();
    double expectedNeighbors(double skin) const;
    // Sets m_useList ("auto": whether the list pays at the current skin) and the kernel table that fits it.
    void chooseNeighborList();
    void rebuildNeighborList();
    void syncPacked();
    void prefetchNeighbors(std::int64_t i) const;
    void placeOnLattice(std::vector<double>& out);
    bool placeRandomly(std::vector<double>& out);
    void commitPositions(const std::vector<double>& rowMajor);
    void buildNeighborList(const double* x, const double* y, const double* z);
    KernelArgs allPairsArgs(const double* oldPos, const double* newPos) const;
    PairSums pairSumsAllPairs(std::int64_t i, const double* oldPos, const double* newPos);
    // New pair energies of particle i at newPos into out (all pairs); oldSum is the lane sum of oldRow.
    PairSums pairEnergiesAllPairs(std::int64_t i, const double* newPos, double* out, const double* oldRow);
    // Squared separation of two positions (row-major), minimum image on the periodic axes.
    double separation2(const double* a, const double* b) const;
    PairSums pairSumsNeighbors(std::int64_t i, const double* oldPos, const double* newPos);
    // Sums over `count` indices idx, gathered as the images nearest oldPos when unwrapping pays.
    PairSums pairSumsIndexed(const std::int32_t* idx, std::int64_t count, const double* oldPos,
                             const double* newPos);

    SystemParams m_params;
    Rng m_rng;
    double m_stepSize;
    std::int64_t m_n;
    int m_dim;
    double m_cutoff2;
    double m_tail;
    PairSumsFn m_kernel = nullptr;
    PairSumsFn m_openKernel;  // the same without the minimum image, for coordinates already unwrapped
    GatherFn m_gather;
    PairEnergiesFn m_pairEnergies;
    const char* m_kernelName;

    // Structure of arrays, NaN-padded to a multiple of kLanes plus one block; z is kept (zeros) in 2D so the
    // kernel can always read it.
    std::vector<double> m_x, m_y, m_z;
    // The same coordinates packed per particle (x, y, z, 0), for the neighbour-list gather.
    std::vector<double> m_xyz;

    double m_energy = 0.0;  // pair + gravity, without the constant tail correction
    std::uint64_t m_attempted = 0;
    std::uint64_t m_accepted = 0;

    // All-pairs systems small enough keep every pair energy (row-major, rows padded to m_stride, zeros
    // beyond N and on the diagonal). A move then computes only the new pair energies; the old sum is a lane
    // sum of the particle's row, bit-identical to recomputing it, so the trajectory is the same either way.
    bool m_useCache = false;    // allowed and allocated
    bool m_cacheValid = false;  // holds the current configuration's pair energies
    std::int64_t m_stride = 0;
    std::vector<double> m_pairCache;
    std::vector<double> m_newPair;

    bool m_useList = false;
    bool m_autoSkin;
    double m_skin;
    NeighborMode m_neighborMode;
    NeighborList m_list;
    std::uint64_t m_farTrials = 0;
    std::vector<std::int32_t> m_farRow;    // neighbours of a trial position beyond the skin
    std::vector<double> m_gx, m_gy, m_gz;  // gathered neighbour coordinates
    std::vector<double> m_packed;          // gather scratch
};

}  // namespace vaepipe
