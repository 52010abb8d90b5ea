// The pair kernel compiled for avx2; CMakeLists.txt sets this file's instruction-set flags.
#include "Kernel.h"

#define VAEPIPE_KERNEL_NAME "avx2"

namespace vaepipe::avx2 {
#include "KernelImpl.inc"
}  // namespace vaepipe::avx2
