#include "Kernel.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vaepipe {

namespace {

int cpuLevel() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
    return 0;
}

// Tables are built once; the active one is published through an atomic pointer, so a sampler or an energy
// call on another thread never reads a half-written table.
// Each level's table is built on first use only: even filling it runs code compiled for that instruction set.
const KernelTable& table(int level) {
    if (level == 2) {
        static const KernelTable t = avx512::table();
        return t;
    }
    if (level == 1) {
        static const KernelTable t = avx2::table();
        return t;
    }
    static const KernelTable t = sse2::table();
    return t;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::atomic<bool> g_forced{false};  // VAEPIPE_SIMD named the level

}  // namespace

const KernelTable& selectKernels() {
    const int have = cpuLevel();
    int want = have;
    bool forced = false;
    if (const char* env = std::getenv("VAEPIPE_SIMD"); env != nullptr && *env != '\0') {
        const std::string s(env);
        if (s == "sse2") {
            want = 0;
        } else if (s == "avx2") {
            want = 1;
        } else if (s == "avx512") {
            want = 2;
        } else {
            throw std::invalid_argument("VAEPIPE_SIMD='" + s +
                                        "' is not one of sse2, avx2, avx512; unset it to use the best available");
        }
        if (want > have) {
            throw std::invalid_argument("VAEPIPE_SIMD='" + s + "' asks for instructions this CPU lacks");
        }
        forced = true;
    }
    g_forced.store(forced, std::memory_order_relaxed);
    const KernelTable& chosen = table(want);
    g_active.store(&chosen, std::memory_order_release);
    return chosen;
}

const KernelTable& activeKernels() {
    const KernelTable* t = g_active.load(std::memory_order_acquire);
    return t != nullptr ? *t : selectKernels();
}

const KernelTable& kernelsFor(std::int64_t pairsPerCall) {
    const KernelTable& active = activeKernels();
    // By name, not by table(2): building a level's table runs its code, which an older CPU cannot.
    if (std::strcmp(active.name, "avx512") == 0 && !g_forced.load(std::memory_order_relaxed) &&
        pairsPerCall < kAvx512MinPairs) {
        return table(1);  // every AVX-512 CPU has AVX2
    }
    return active;
}

}  // namespace vaepipe
