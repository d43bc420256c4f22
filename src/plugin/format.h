#pragma once
// Output in kubectl's style: tables (upper-case headers, columns at least 6 wide and 3 spaces
// apart, as kubectl's tabwriter), ages ("5m", "3h", "2d" as kubectl's HumanDuration), JSON with
// 4-space indentation and YAML.
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::plugin {

using nlohmann::json;

// kubectl's duration.HumanDuration: "0s", "45s", "2m30s" (< 10 min), "42m", "3h5m" (< 8 h),
// "20h", "2d5h" (< 8 d), "30d", "2y10d" (< 8 y), "9y"; "<invalid>" below -1 s.
std::string humanDuration(std::chrono::milliseconds d);

// Age of an RFC 3339 timestamp at `now`; "<unknown>" when absent or unparsable.
std::string age(const std::string& timestamp, std::chrono::system_clock::time_point now);

std::string formatRfc3339(std::chrono::system_clock::time_point t);  // second precision, UTC

class Table {
  public:
    explicit Table(std::vector<std::string> headers);  // upper-cased when printed
    void addRow(std::vector<std::string> cells);
    std::string str() const;
    std::size_t rows() const { return rows_.size(); }

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

std::string toJsonText(const json& value);  // 4-space indent and a final newline, as kubectl
std::string toYamlText(const json& value);

// The first 7 characters of a 40-hex commit id; other revisions unchanged.
std::string shortRevision(const std::string& revision);

// A string at a JSON pointer ("/status/phase"); numbers and booleans as text; "" if absent.
std::string textAt(const json& obj, const std::string& pointer);

}  // namespace sluice::plugin
