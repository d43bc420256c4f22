#pragma once
// Helpers shared by the kube tests: scoped environment variables (base64: sluice/util/base64.h).
// Temporary directories: sluice::testing::TempDir (tempdir/tempdir.h).
#include <stdlib.h>

#include <optional>
#include <string>

namespace sluice::kube::testutil {

class ScopedEnv {
  public:
    ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
        if (const char* old = getenv(name_.c_str())) old_ = old;
        if (value)
            setenv(name_.c_str(), value->c_str(), 1);
        else
            unsetenv(name_.c_str());
    }
    ~ScopedEnv() {
        if (old_)
            setenv(name_.c_str(), old_->c_str(), 1);
        else
            unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    std::string name_;
    std::optional<std::string> old_;
};

}  // namespace sluice::kube::testutil
