// The only file that defines the extension module; each export_*.cpp binds one part of the C++ core.
#include <pybind11/pybind11.h>

#include "Kernel.h"

namespace py = pybind11;

namespace vaepipe::detail {
void exportSampler(py::module_& m);
void exportEnergy(py::module_& m);
}  // namespace vaepipe::detail

PYBIND11_MODULE(_core, m) {
    m.doc() = "vaepipe C++ core: LJ + gravity Metropolis Monte Carlo (use vaepipe.mc and vaepipe.energy)";
    vaepipe::detail::exportSampler(m);
    vaepipe::detail::exportEnergy(m);
    m.def("simd_level", [] { return std::string(vaepipe::activeKernels().name); },
          "Instruction set of the pair kernel in use: 'avx512', 'avx2' or 'sse2'.");
    m.def("select_kernels", [] { return std::string(vaepipe::selectKernels().name); },
          "Choose the pair kernel again from the CPU and VAEPIPE_SIMD; affects samplers created afterwards.");
    m.attr("source_digest") = VAEPIPE_SOURCE_DIGEST;
    m.attr("compile_flags") = VAEPIPE_COMPILE_FLAGS;
}
