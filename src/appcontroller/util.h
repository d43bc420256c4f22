#pragma once
// Small helpers private to the Application controller.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/kube/types.h"

namespace sluice::appcontroller::detail {

using nlohmann::json;

// "30s", "1m30s", "250ms": for messages.
std::string formatDuration(std::chrono::milliseconds d);

// Runs task(i) for i in [0, n) with at most `parallelism` running at once (the calling thread
// takes part). Returns when all have finished. Tasks must not throw.
void parallelFor(std::size_t n, int parallelism, const std::function<void(std::size_t)>& task);

// A string field at a JSON pointer, "" when absent or not a string.
std::string strAt(const json& obj, const json::json_pointer& ptr);

// "apps/Deployment ns/name" (or "/Namespace name") for messages and Events.
std::string describe(const std::string& group, const std::string& kind, const std::string& ns,
                     const std::string& name);

kube::GroupVersionKind gvkOf(const std::string& group, const std::string& version,
                             const std::string& kind);

}  // namespace sluice::appcontroller::detail
