#include "memory.h"

#include <malloc.h>

namespace sluice::controller {

void limitMallocArenas(int arenas) {
    mallopt(M_ARENA_MAX, arenas);
}

void MemoryTrimmer::tick() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + interval_;
    malloc_trim(0);
}

}  // namespace sluice::controller
