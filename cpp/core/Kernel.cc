#include "Kernel.h"

#include <cstdlib>
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

KernelTable g_active{};

}  // namespace

const KernelTable& selectKernels() {
    const int have = cpuLevel();
    int want = have;
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
    }
    g_active = want == 2 ? avx512::table() : want == 1 ? avx2::table() : sse2::table();
    return g_active;
}

const KernelTable& activeKernels() {
    if (g_active.name == nullptr) selectKernels();
    return g_active;
}

}  // namespace vaepipe
