#pragma once
// Go-style durations ("30s", "1m30s", "500ms") as used by Flagger manifests, and RFC 3339
// timestamps as written into Kubernetes status.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::canaryengine {

using Time = std::chrono::system_clock::time_point;
using Duration = std::chrono::milliseconds;

// Parses a Go duration (time.ParseDuration syntax: sequence of decimal number + unit, units
// ns/us/µs/ms/s/m/h). Negative durations are rejected. Sub-millisecond parts are truncated.
std::optional<Duration> parseGoDuration(std::string_view text);

// Formats as Go would print it ("1m30s", "500ms", "0s").
std::string formatGoDuration(Duration d);

// "2026-01-01T00:00:00Z"; also accepts fractional seconds and +hh:mm offsets.
std::optional<Time> parseTimestamp(std::string_view text);
std::string formatTimestamp(Time t);

}  // namespace sluice::canaryengine
