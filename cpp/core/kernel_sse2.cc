// The pair kernel compiled for sse2; CMakeLists.txt sets this file's instruction-set flags.
#include "Kernel.h"

#define VAEPIPE_KERNEL_NAME "sse2"

namespace vaepipe::sse2 {
#include "KernelImpl.inc"
}  // namespace vaepipe::sse2
