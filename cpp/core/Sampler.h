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
            NeighborMode neighborMode = NeighborMode::Auto, double neighborSkin = 1.5, bool place = true,
            bool allowPairCache = true);

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
    // Positions (row-major) at the last neighbour-list build; empty when no list is in use or it is due for a
    // rebuild. Restoring them rebuilds the very same list, so a restart continues bit for bit.
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
    bool usesPairCache() const { return m_useCache; }
    double neighborSkin() const { return m_skin; }
    std::uint64_t neighborRebuilds() const { return m_list.rebuilds(); }
    // Trial moves priced by all pairs because they left the list's skin.
    std::uint64_t exactFallbacks() const { return m_exactFallbacks; }
    // Mean list length at the last build.
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

private:
    template <int Dim, Boundary B, bool UseList, bool UseCache>
    void moves(std::int64_t count);
    void fillPairCache();
    void rebuildNeighborList();
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

    SystemParams m_params;
    Rng m_rng;
    double m_stepSize;
    std::int64_t m_n;
    int m_dim;
    double m_cutoff2;
    double m_tail;
    PairSumsFn m_kernel;
    PairSumsFn m_openKernel;  // the same without the minimum image, for coordinates already unwrapped
    GatherFn m_gather;
    PairEnergiesFn m_pairEnergies;
    const char* m_kernelName;

    // Structure of arrays, NaN-padded to a multiple of kLanes plus one block; z is kept (zeros) in 2D so the
    // kernel can always read it.
    std::vector<double> m_x, m_y, m_z;

    double m_energy = 0.0;  // pair + gravity, without the constant tail correction
    std::uint64_t m_attempted = 0;
    std::uint64_t m_accepted = 0;

    // All-pairs systems small enough keep every pair energy (row-major, rows padded to m_stride, zeros
    // beyond N and on the diagonal). A move then computes only the new pair energies; the old sum is a lane
    // sum of the particle's row, bit-identical to recomputing it, so the trajectory is the same either way.
    bool m_useCache = false;
    std::int64_t m_stride = 0;
    std::vector<double> m_pairCache;
    std::vector<double> m_newPair;

    bool m_useList = false;
    double m_skin;
    NeighborMode m_neighborMode;
    NeighborList m_list;
    std::uint64_t m_exactFallbacks = 0;
    std::vector<double> m_gx, m_gy, m_gz;  // gathered neighbour coordinates
};

}  // namespace vaepipe
