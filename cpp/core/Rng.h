// xoshiro256** (Blackman & Vigna 2018): 256 bits of state, period 2^256 - 1, passes BigCrush, and is a few
// instructions per draw. The state is seeded from numpy.random.SeedSequence on the Python side, so one base seed
// gives independent, reproducible streams per chain.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

namespace vaepipe {

class Rng {
public:
    using State = std::array<std::uint64_t, 4>;

    explicit Rng(const State& state) : m_s(check(state)) {}

    const State& state() const { return m_s; }
    void setState(const State& state) { m_s = check(state); }

    std::uint64_t next() {
        const std::uint64_t result = rotl(m_s[1] * 5, 7) * 9;
        const std::uint64_t t = m_s[1] << 17;
        m_s[2] ^= m_s[0];
        m_s[3] ^= m_s[1];
        m_s[1] ^= m_s[2];
        m_s[0] ^= m_s[3];
        m_s[2] ^= t;
        m_s[3] = rotl(m_s[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    // Unbiased integer in [0, n) (Lemire 2019, multiply-shift with rejection of the biased sliver).
    std::uint64_t below(std::uint64_t n) {
        unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
        auto low = static_cast<std::uint64_t>(m);
        if (low < n) {
            const std::uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<unsigned __int128>(next()) * n;
                low = static_cast<std::uint64_t>(m);
            }
        }
        return static_cast<std::uint64_t>(m >> 64);
    }

private:
    // The all-zero state is xoshiro's one fixed point: it would return 0 for ever (and hang `below`).
    static const State& check(const State& state) {
        if ((state[0] | state[1] | state[2] | state[3]) == 0) {
            throw std::invalid_argument("rng_state must not be all zeros (xoshiro256** would emit only zeros)");
        }
        return state;
    }

    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    State m_s;
};

}  // namespace vaepipe
