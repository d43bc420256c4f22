#pragma once
// The shared data beside the repository, which holds the third-party CRDs the router, controller
// and API server tests install (thirdparty-crds/...). It is not part of the repository: tests
// that need it skip without it. Apart from testutil.h (which includes it) so that tests with
// helpers of their own can use it alone.
#include <cstdlib>
#include <filesystem>
#include <string>

#ifdef SLUICE_SOURCE_DIR
namespace sluice::testing {

// The folder: $SLUICE_SHARED_DIR when set, else ../shared beside the repository.
inline std::string sharedDir() {
    if (const char* dir = std::getenv("SLUICE_SHARED_DIR"); dir && *dir) return dir;
    return std::string(SLUICE_SOURCE_DIR) + "/../shared";
}

// A file or folder of the shared data.
inline std::string sharedPath(const std::string& relative) {
    return sharedDir() + "/" + relative;
}

// "" when sharedPath(relative) exists, else why a test that needs it cannot run.
inline std::string missingShared(const std::string& relative) {
    const std::string path = sharedPath(relative);
    if (std::filesystem::exists(path)) return {};
    return path +
           " not found (third-party CRDs are not part of the repository; set "
           "SLUICE_SHARED_DIR to the folder that holds thirdparty-crds/)";
}

// Skips the current test (or, in SetUpTestSuite, the whole suite) when `relative` of the shared
// data is missing. Use it before anything the test would have to undo.
#define SLUICE_SKIP_WITHOUT_SHARED(relative)                                              \
    do {                                                                                  \
        if (const std::string sluiceMissing = ::sluice::testing::missingShared(relative); \
            !sluiceMissing.empty())                                                       \
            GTEST_SKIP() << sluiceMissing;                                                \
    } while (0)

}  // namespace sluice::testing
#endif
