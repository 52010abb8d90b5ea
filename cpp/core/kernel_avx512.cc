// The pair kernel compiled for avx512; CMakeLists.txt sets this file's instruction-set flags.
#include "Kernel.h"

#define VAEPIPE_KERNEL_NAME "avx512"

namespace vaepipe::avx512 {
#include "KernelImpl.inc"
}  // namespace vaepipe::avx512
