#include "util.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "sluice/kube/fence.h"

namespace sluice::appcontroller::detail {

std::string formatDuration(std::chrono::milliseconds d) {
    using namespace std::chrono;
    if (d < seconds(1)) return std::to_string(d.count()) + "ms";
    auto total = duration_cast<seconds>(d).count();
    auto ms = d.count() % 1000;
    std::string out;
    if (total >= 3600) out += std::to_string(total / 3600) + "h";
    if (total >= 60 && total % 3600 / 60) out += std::to_string(total % 3600 / 60) + "m";
    if (total % 60 || out.empty()) {
        out += std::to_string(total % 60);
        if (ms) {
            char frac[8];
            std::snprintf(frac, sizeof frac, ".%03lld", static_cast<long long>(ms));
            std::string f = frac;
            while (f.back() == '0') f.pop_back();
            out += f;
        }
        out += "s";
    }
    return out;
}

void parallelFor(std::size_t n, int parallelism, const std::function<void(std::size_t)>& task) {
    if (n == 0) return;
    std::size_t threads = std::min<std::size_t>(n, std::max(1, parallelism));
    std::atomic<std::size_t> next{0};
    // The helpers write for the caller: they work under its fence (kube/fence.h).
    const auto fence = kube::currentFence();
    auto worker = [&] {
        const kube::FenceScope scope(fence);
        for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) task(i);
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
}

std::string strAt(const json& obj, const json::json_pointer& ptr) {
    if (!obj.contains(ptr)) return {};
    const json& v = obj.at(ptr);
    return v.is_string() ? v.get<std::string>() : std::string();
}

std::string describe(const std::string& group, const std::string& kind, const std::string& ns,
                     const std::string& name) {
    std::string out = group.empty() ? kind : group + "/" + kind;
    out += " ";
    if (!ns.empty()) out += ns + "/";
    return out + name;
}

kube::GroupVersionKind gvkOf(const std::string& group, const std::string& version,
                             const std::string& kind) {
    return kube::GroupVersionKind{group, version, kind};
}

}  // namespace sluice::appcontroller::detail
