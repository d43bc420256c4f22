#pragma once
// A scratch directory for tests and benchmarks.
#include <filesystem>
#include <string>

namespace sluice::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    const std::string& str() const { return str_; }  // path() as a string
    // str() + "/" + name; name may have several components ("a/b/c.yaml").
    std::string file(const std::string& name) const { return str_ + "/" + name; }
    // Writes content (binary, truncating) to file(name), creating its parent directories;
    // returns file(name).
    std::string write(const std::string& name, const std::string& content) const;

  private:
    std::filesystem::path path_;
    std::string str_;
};

}  // namespace sluice::testing
