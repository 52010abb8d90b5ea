// The boundary conditions on their own, without the rest of System.h: Kernel.h (hence every per-instruction-set
// kernel file) needs the enum, and those files must not pull in library headers whose inline functions the
// linker could merge into the AVX-512 copy.
#pragma once

namespace vaepipe {

// Reflect: closed box, mirrored walls on every axis. Periodic: minimum image on every axis. Slab: periodic
// along the horizontal axes, walls along the height (the last axis) -- a film of fluid on a floor.
// The values are the column of KernelTable (see boundaryIndex in Kernel.h).
enum class Boundary { Reflect = 0, Periodic = 1, Slab = 2 };

}  // namespace vaepipe
