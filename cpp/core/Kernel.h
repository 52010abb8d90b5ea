// The hot loop: LJ pair-energy sums of one particle, at its old and its trial position, against a block of
// other particles stored as structure of arrays.
//
// It is compiled once per instruction set (kernel_sse2.cc, kernel_avx2.cc, kernel_avx512.cc, each with its own
// -m flags) and chosen at run time from the CPU's features, so one portable build runs at AVX2 or AVX-512 speed
// where the CPU has it. Every variant accumulates in the same 8 fixed lanes and reduces them in the same order,
// and the build forbids FMA contraction, so all variants give bit-identical sums: a seed gives the same
// trajectory on every x86-64 machine.
#pragma once

#include "Boundary.h"

#include <cstdint>

namespace vaepipe {

// Accumulator lanes; also the padding multiple of coordinate arrays. 8 doubles = one AVX-512 register.
constexpr std::int64_t kLanes = 8;

// Whether axis k (0-based, of dim) wraps around under boundary b (slab: every axis but the last). Static for the
// same reason as paddedSize.
static constexpr bool periodicAxis(Boundary b, int k, int dim) {
    return b == Boundary::Periodic || (b == Boundary::Slab && k < dim - 1);
}

// The boundary's column in KernelTable: the one place where the enum becomes an array index.
static constexpr int boundaryIndex(Boundary b) { return static_cast<int>(b); }

// constexpr (hence inline) but also static: each translation unit keeps its own copy, so the linker can never
// pick the one compiled with AVX-512 flags for the others.
static constexpr std::int64_t paddedSize(std::int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// The kernel has no index masks (they stop GCC vectorising it). An entry is left out of the sums by giving it a
// NaN coordinate: its r2 is NaN, fails the cutoff test and adds exactly zero. So the moving particle's own entry
// is set to NaN for the call, and every array is NaN-padded from `count` to paddedSize(count).
struct KernelArgs {
    // Coordinates of the other particles, readable up to paddedSize(count); z is unused in 2D.
    const double* x;
    const double* y;
    const double* z;
    std::int64_t count;
    double oldPos[3];
    double newPos[3];
    double boxLength;  // used for the minimum image when periodic
    double cutoff2;    // squared cutoff; +inf when none
};

struct PairSums {
    double oldSum;  // sum_j u(|r_old - r_j|) over the entries that are not NaN
    double newSum;  // sum_j u(|r_new - r_j|)
};

using PairSumsFn = PairSums (*)(const KernelArgs&);
// For the pair-energy cache: new pair energies stored per entry in out[0, paddedSize(count)), newSum as
// PairSumsFn computes it, and oldSum as the lane sum of the cached oldRow[0, paddedSize(count)) (zero-padded).
using PairEnergiesFn = PairSums (*)(const KernelArgs&, double* out, const double* oldRow);

// For m < count and each axis k < 3: dst[k][m] = xyz[4 idx[m] + k], moved to the periodic image nearest to
// center[k] when it is more than half[k] away (v - L or v + L exactly); half[k] = +inf leaves axis k as it is.
// xyz holds one particle per 32 bytes (x, y, z, unused), so a neighbour costs one cache line, not three;
// packed is scratch for 4 count doubles.
using GatherFn = void (*)(const double* xyz, const std::int32_t* idx, std::int64_t count, double* const* dst,
                          const double* center, const double* half, double boxLength, double* packed);

// Variant index: [dim == 3][boundaryIndex(boundary)]; the reflect variant has no minimum image at all.
struct KernelTable {
    PairSumsFn pairSums[2][3];
    PairEnergiesFn pairEnergies[2][3];
    GatherFn gather;
    const char* name;
};

namespace sse2 {
KernelTable table();
}
namespace avx2 {
KernelTable table();
}
namespace avx512 {
KernelTable table();
}

// The best table this CPU supports, unless the environment variable VAEPIPE_SIMD (sse2, avx2, avx512) asks for
// a lower one (for tests and benchmarks). Asking for more than the CPU has is an error.
const KernelTable& activeKernels();

// Reselects from the current environment; used by tests that change VAEPIPE_SIMD.
const KernelTable& selectKernels();

// Kernel calls over fewer pairs than this run faster with the AVX2 kernels than with the AVX-512 ones: a zmm
// block of 8 lanes does not amortise its longer latency (N = 30: avx2 1.06x avx512 here and 1.2x on an Intel
// Xeon; from about 100 pairs on, avx512 is 1.2x avx2). See docs/benchmarks.md.
constexpr std::int64_t kAvx512MinPairs = 64;

// The table for a caller whose kernel calls span about `pairsPerCall` pairs: the active table, except that AVX2
// stands in for AVX-512 below kAvx512MinPairs. All tables give the same bits, so this choice is free; an
// explicit VAEPIPE_SIMD is honoured exactly.
const KernelTable& kernelsFor(std::int64_t pairsPerCall);

}  // namespace vaepipe
