#pragma once
// How the process gives memory back to the system. glibc's malloc keeps what a burst of work
// (a first sync of many Applications, a relist) freed, in per-thread arenas: the resident size
// then stays near the peak. Fewer arenas and a periodic trim keep it near what is in use.
#include <chrono>

namespace sluice::controller {

// At most `arenas` malloc arenas (glibc's default is 8 per core). Before any thread starts.
void limitMallocArenas(int arenas);

// Returns freed heap pages to the system at most once per `interval` (malloc_trim), when
// called from a loop that runs anyway.
class MemoryTrimmer {
  public:
    explicit MemoryTrimmer(std::chrono::seconds interval) : interval_(interval) {}
    void tick();

  private:
    std::chrono::seconds interval_;
    std::chrono::steady_clock::time_point next_ = std::chrono::steady_clock::now();
};

}  // namespace sluice::controller
