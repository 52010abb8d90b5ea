// An independent, single-file Metropolis Monte Carlo kernel of Lennard-Jones particles: the "tight kernel" that
// benchmarks/bench_reference_kernel.py measures vaepipe's sampler against. It shares no code with vaepipe: all
// pairs, structure of arrays, xoshiro256**, one loop that sums the old and the new pair energies of the moving
// particle, compiled by the benchmark with g++ -O3 -march=native -fopenmp-simd -fno-trapping-math -fno-math-errno
// (FMA and the widest vectors the machine has, which vaepipe's portable build forgoes; without the last two flags
// GCC cannot vectorise nearbyint and the kernel runs 3.7x slower).
//
// Model (reduced LJ units): U = sum_{i<j} 4 (r^-12 - r^-6) [r < rc] + 4 gamma sum_i z_i; trial moves displace one
// particle uniformly in [-step, step]^3; walls mirror ("reflect") or the box wraps ("periodic", minimum image).
// The tail correction is a constant and does not enter dU, so it is not computed here.
//
// Usage: reference_kernel N L T gamma periodic(0|1) rc(<=0: none) step warmup_sweeps timed_sweeps seed < xyz
//   xyz: N lines "x y z" (the starting configuration, inside [0, L]). Prints one JSON line:
//   {"moves_per_s": ..., "acceptance": ..., "seconds": ...}
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

struct Xoshiro256ss {
    std::uint64_t s[4];
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    explicit Xoshiro256ss(std::uint64_t seed) {
        // splitmix64 seeding (Vigna's recommendation).
        for (auto& w : s) {
            std::uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            w = z ^ (z >> 31);
        }
    }
    std::uint64_t next() {
        const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    std::uint32_t below(std::uint32_t n) {  // Lemire's multiply-shift; the bias (< n / 2^32) is irrelevant here
        return static_cast<std::uint32_t>((static_cast<std::uint64_t>(static_cast<std::uint32_t>(next() >> 32)) * n) >> 32);
    }
};

template <bool Periodic>
void run(int n, double L, double T, double gamma, double rc, double step, long sweeps, Xoshiro256ss& rng,
           std::vector<double>& x, std::vector<double>& y, std::vector<double>& z, long& accepted) {
    const double rc2 = rc > 0 ? rc * rc : INFINITY;
    const double invL = 1.0 / L;
    const double beta = 1.0 / T;
    double* __restrict px = x.data();
    double* __restrict py = y.data();
    double* __restrict pz = z.data();
    const long moves = sweeps * n;
    for (long m = 0; m < moves; ++m) {
        const int i = static_cast<int>(rng.below(static_cast<std::uint32_t>(n)));
        const double ox = px[i], oy = py[i], oz = pz[i];
        double nx = ox + step * (2.0 * rng.uniform() - 1.0);
        double ny = oy + step * (2.0 * rng.uniform() - 1.0);
        double nz = oz + step * (2.0 * rng.uniform() - 1.0);
        if (Periodic) {
            nx -= L * std::floor(nx * invL);
            ny -= L * std::floor(ny * invL);
            nz -= L * std::floor(nz * invL);
        } else {
            nx = nx < 0 ? -nx : nx > L ? 2 * L - nx : nx;
            ny = ny < 0 ? -ny : ny > L ? 2 * L - ny : ny;
            nz = nz < 0 ? -nz : nz > L ? 2 * L - nz : nz;
        }
        double dU = 0.0;
#pragma omp simd reduction(+ : dU)
        for (int j = 0; j < n; ++j) {
            double ax = ox - px[j], ay = oy - py[j], az = oz - pz[j];
            double bx = nx - px[j], by = ny - py[j], bz = nz - pz[j];
            if (Periodic) {
                ax -= L * std::nearbyint(ax * invL);
                ay -= L * std::nearbyint(ay * invL);
                az -= L * std::nearbyint(az * invL);
                bx -= L * std::nearbyint(bx * invL);
                by -= L * std::nearbyint(by * invL);
                bz -= L * std::nearbyint(bz * invL);
            }
            const double r2o = ax * ax + ay * ay + az * az;
            const double r2n = bx * bx + by * by + bz * bz;
            const double io = 1.0 / (r2o * r2o * r2o);
            const double in = 1.0 / (r2n * r2n * r2n);
            const double uo = r2o < rc2 && j != i ? 4.0 * io * (io - 1.0) : 0.0;
            const double un = r2n < rc2 && j != i ? 4.0 * in * (in - 1.0) : 0.0;
            dU += un - uo;
        }
        dU += 4.0 * gamma * (nz - oz);
        if (dU <= 0.0 || rng.uniform() < std::exp(-beta * dU)) {
            px[i] = nx;
            py[i] = ny;
            pz[i] = nz;
            ++accepted;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 11) {
        std::fprintf(stderr, "usage: %s N L T gamma periodic rc step warmup_sweeps timed_sweeps seed < xyz\n", argv[0]);
        return 2;
    }
    const int n = std::atoi(argv[1]);
    const double L = std::atof(argv[2]), T = std::atof(argv[3]), gamma = std::atof(argv[4]);
    const bool periodic = std::atoi(argv[5]) != 0;
    const double rc = std::atof(argv[6]), step = std::atof(argv[7]);
    const long warmup = std::atol(argv[8]), timed = std::atol(argv[9]);
    Xoshiro256ss rng(std::strtoull(argv[10], nullptr, 10));
    std::vector<double> x(n), y(n), z(n);
    for (int i = 0; i < n; ++i) {
        if (std::scanf("%lf %lf %lf", &x[i], &y[i], &z[i]) != 3) {
            std::fprintf(stderr, "expected %d lines of x y z on stdin\n", n);
            return 2;
        }
    }
    auto go = [&](long sweeps, long& accepted) {
        periodic ? run<true>(n, L, T, gamma, rc, step, sweeps, rng, x, y, z, accepted)
                        : run<false>(n, L, T, gamma, rc, step, sweeps, rng, x, y, z, accepted);
    };
    long accepted = 0;
    go(warmup, accepted);
    accepted = 0;
    const auto t0 = std::chrono::steady_clock::now();
    go(timed, accepted);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double moves = static_cast<double>(timed) * n;
    std::printf("{\"moves_per_s\": %.6e, \"acceptance\": %.4f, \"seconds\": %.4f}\n", moves / seconds,
                accepted / moves, seconds);
    return 0;
}
