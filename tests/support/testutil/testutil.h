#pragma once
// Helpers that tests of every kind and the benchmarks share, so each need not carry its own
// copy: reading a file, the paths of the repository, its example manifests and the shared
// third-party CRDs, and polling for a condition.
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "testutil/shared_data.h"

namespace sluice::testing {

// The whole file. Throws when it cannot be opened, so a wrong path fails the test with its name
// instead of handing on an empty document.
inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

#ifdef SLUICE_SOURCE_DIR
// A file of the repository. SLUICE_SOURCE_DIR is defined by sluice_add_test (and by the
// benchmarks that read sources), hence the guard for the targets without it.
inline std::string sourcePath(const std::string& relative) {
    return std::string(SLUICE_SOURCE_DIR) + "/" + relative;
}

// An example manifest of the repository's test data (tests/data/examples/<file>): copies of the
// Argo CD / Flagger style examples that the spec, router, controller and CRD tests read.
inline std::string examplePath(const std::string& file) {
    return sourcePath("tests/data/examples/" + file);
}
#endif

// Polls cond every `poll` until it holds or `timeout` has passed; the last answer counts, so a
// condition that comes true right at the deadline is not lost.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30),
                       std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(poll);
    }
    return true;
}

}  // namespace sluice::testing
