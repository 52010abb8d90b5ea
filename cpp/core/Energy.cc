#include "Energy.h"

#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace vaepipe {

namespace {

// Configuration s of (count, n, dim) row-major positions into coord[k][i], checked to lie in [0, L] (finite),
// with a coordinate at L on a periodic axis moved to 0 (the same point).
void loadConfiguration(const SystemParams& params, const double* positions, std::int64_t s, double* const* coord) {
    const std::int64_t n = params.nParticles;
    const int dim = params.dim;
    const double L = params.boxLength;
    const double* p = positions + s * n * dim;
    for (std::int64_t i = 0; i < n; ++i) {
        for (int k = 0; k < dim; ++k) {
            double v = p[i * dim + k];
            if (!(v >= 0.0 && v <= L)) {
                std::ostringstream msg;
                msg << "positions[" << s << ", " << i << ", " << k << "] = " << v << " is outside the box [0, " << L
                    << "]";
                throw std::invalid_argument(msg.str());
            }
            if (periodicAxis(params.boundary, k, dim) && v >= L) v -= L;
            coord[k][i] = v;
        }
    }
}

}  // namespace

double pairEnergy(PairSumsFn kernel, const double* x, const double* y, const double* z, std::int64_t n,
                  double boxLength, double cutoff2) {
    double pair = 0.0;
    for (std::int64_t i = 0; i + 1 < n; ++i) {
        KernelArgs a{};
        a.x = x + i + 1;
        a.y = y + i + 1;
        a.z = z + i + 1;
        a.count = n - i - 1;
        a.oldPos[0] = a.newPos[0] = x[i];
        a.oldPos[1] = a.newPos[1] = y[i];
        a.oldPos[2] = a.newPos[2] = z[i];
        a.boxLength = boxLength;
        a.cutoff2 = cutoff2;
        pair += kernel(a).oldSum;
    }
    return pair;
}

double gravityEnergy(const double* height, std::int64_t n, double gamma) {
    if (gamma == 0.0) return 0.0;
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += height[i];
    return 4.0 * gamma * sum;
}

void totalEnergies(const SystemParams& params, const double* positions, std::int64_t count, double* out) {
    params.validate();
    const std::int64_t n = params.nParticles;
    const int dim = params.dim;
    const double L = params.boxLength;
    const double cutoff2 = params.hasCutoff() ? params.cutoff * params.cutoff : std::numeric_limits<double>::infinity();
    const PairSumsFn kernel = kernelsFor(n).pairSums[dim == 3 ? 1 : 0][boundaryIndex(params.boundary)];
    const double tail = params.tailEnergy();
    // NaN padding beyond n keeps the kernel's tail lanes out of the sums (see Kernel.h).
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> x(paddedSize(n) + kLanes, nan), y(x.size(), nan), z(x.size(), dim == 3 ? nan : 0.0);
    double* coord[3] = {x.data(), y.data(), z.data()};
    for (std::int64_t s = 0; s < count; ++s) {
        loadConfiguration(params, positions, s, coord);
        out[s] = pairEnergy(kernel, x.data(), y.data(), z.data(), n, L, cutoff2) +
                 gravityEnergy(coord[dim - 1], n, params.gamma) + tail;
    }
}

void totalForces(const SystemParams& params, const double* positions, std::int64_t count, double* out) {
    params.validate();
    const std::int64_t n = params.nParticles;
    const int dim = params.dim;
    const double L = params.boxLength;
    const double cutoff2 = params.hasCutoff() ? params.cutoff * params.cutoff : std::numeric_limits<double>::infinity();
    bool periodic[3];
    for (int k = 0; k < 3; ++k) periodic[k] = k < dim && periodicAxis(params.boundary, k, dim);
    std::vector<double> x(n), y(n), z(n, 0.0);
    double* coord[3] = {x.data(), y.data(), z.data()};
    for (std::int64_t s = 0; s < count; ++s) {
        loadConfiguration(params, positions, s, coord);
        double* f = out + s * n * dim;
        for (std::int64_t m = 0; m < n * dim; ++m) f[m] = 0.0;
        for (std::int64_t i = 0; i + 1 < n; ++i) {
            for (std::int64_t j = i + 1; j < n; ++j) {
                double d[3] = {0.0, 0.0, 0.0};
                double r2 = 0.0;
                for (int k = 0; k < dim; ++k) {
                    double dk = coord[k][i] - coord[k][j];
                    // Signed minimum image: coordinates are in [0, L), so |dk| < L and one shift suffices.
                    if (periodic[k]) dk = dk > 0.5 * L ? dk - L : (dk < -0.5 * L ? dk + L : dk);
                    d[k] = dk;
                    r2 += dk * dk;
                }
                if (!(r2 < cutoff2)) continue;
                if (r2 == 0.0) {
                    std::ostringstream msg;
                    msg << "particles " << i << " and " << j << " of configuration " << s
                        << " are at the same place: the force is undefined";
                    throw std::invalid_argument(msg.str());
                }
                // -dU/dr / r for U = 4 (r^-12 - r^-6): 24 r^-2 r^-6 (2 r^-6 - 1)
                const double inv2 = 1.0 / r2;
                const double inv6 = inv2 * inv2 * inv2;
                const double scale = 24.0 * inv2 * inv6 * (2.0 * inv6 - 1.0);
                for (int k = 0; k < dim; ++k) {
                    f[i * dim + k] += scale * d[k];
                    f[j * dim + k] -= scale * d[k];
                }
            }
        }
        if (params.gamma != 0.0)
            for (std::int64_t i = 0; i < n; ++i) f[i * dim + dim - 1] -= 4.0 * params.gamma;
    }
}

}  // namespace vaepipe
