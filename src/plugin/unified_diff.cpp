#include "unified_diff.h"

#include <algorithm>

namespace sluice::plugin {

namespace {

constexpr const char* kRed = "\033[31m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kCyan = "\033[36m";
constexpr const char* kBold = "\033[1m";
constexpr const char* kReset = "\033[0m";

// "start,count" as diff -u writes it: a count of 1 is omitted; an empty range starts at the
// line before it.
std::string range(std::size_t start0, std::size_t count) {
    if (count == 0) return std::to_string(start0) + ",0";
    if (count == 1) return std::to_string(start0 + 1);
    return std::to_string(start0 + 1) + "," + std::to_string(count);
}

}  // namespace

std::vector<Edit> diffLines(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    const long n = static_cast<long>(a.size());
    const long m = static_cast<long>(b.size());
    const long max = n + m;
    std::vector<Edit> script;
    if (max == 0) return script;
    // Myers: v[k + offset] is the furthest x on diagonal k (= x - y) after d edits; one copy of
    // v per d is kept to trace the path back.
    const long offset = max + 1;
    std::vector<long> v(2 * max + 3, 0);
    std::vector<std::vector<long>> trace;
    long finalD = -1;
    for (long d = 0; d <= max && finalD < 0; ++d) {
        trace.push_back(v);
        for (long k = -d; k <= d; k += 2) {
            long x;
            if (k == -d || (k != d && v[k - 1 + offset] < v[k + 1 + offset])) {
                x = v[k + 1 + offset];  // down: an insertion
            } else {
                x = v[k - 1 + offset] + 1;  // right: a deletion
            }
            long y = x - k;
            while (x < n && y < m && a[x] == b[y]) ++x, ++y;
            v[k + offset] = x;
            if (x >= n && y >= m) {
                finalD = d;
                break;
            }
        }
    }
    // Walk back from (n, m), collecting edits in reverse.
    long x = n, y = m;
    for (long d = finalD; d >= 0; --d) {
        const std::vector<long>& pv = trace[d];
        const long k = x - y;
        long prevK;
        if (d == 0) {
            prevK = 0;
        } else if (k == -d || (k != d && pv[k - 1 + offset] < pv[k + 1 + offset])) {
            prevK = k + 1;
        } else {
            prevK = k - 1;
        }
        const long prevX = d == 0 ? 0 : pv[prevK + offset];
        const long prevY = prevX - prevK;
        while (x > prevX && y > prevY) {
            --x, --y;
            script.push_back(
                {EditOp::Equal, static_cast<std::size_t>(x), static_cast<std::size_t>(y)});
        }
        if (d == 0) break;
        if (x == prevX) {
            --y;
            script.push_back(
                {EditOp::Insert, static_cast<std::size_t>(x), static_cast<std::size_t>(y)});
        } else {
            --x;
            script.push_back(
                {EditOp::Delete, static_cast<std::size_t>(x), static_cast<std::size_t>(y)});
        }
        x = prevX, y = prevY;
    }
    std::reverse(script.begin(), script.end());
    // Deletions before insertions inside each run of changes (stable, as diff -u prints them).
    for (std::size_t i = 0; i < script.size();) {
        if (script[i].op == EditOp::Equal) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < script.size() && script[j].op != EditOp::Equal) ++j;
        std::stable_partition(script.begin() + static_cast<long>(i),
                              script.begin() + static_cast<long>(j),
                              [](const Edit& e) { return e.op == EditOp::Delete; });
        i = j;
    }
    return script;
}

std::vector<std::string> splitLines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string::npos) {
            lines.push_back(text.substr(start));
            break;
        }
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

std::string unifiedDiff(const std::string& oldText, const std::string& newText,
                        const UnifiedOptions& options) {
    const auto a = splitLines(oldText);
    const auto b = splitLines(newText);
    const auto script = diffLines(a, b);
    if (std::all_of(script.begin(), script.end(),
                    [](const Edit& e) { return e.op == EditOp::Equal; }))
        return "";
    const std::size_t context = static_cast<std::size_t>(std::max(options.context, 0));
    auto paint = [&](const char* colour, const std::string& line) {
        return options.color ? colour + line + kReset + "\n" : line + "\n";
    };
    std::string out =
        paint(kBold, "--- " + options.oldLabel) + paint(kBold, "+++ " + options.newLabel);
    // Hunks: runs of changes, joined when fewer than 2*context equal lines separate them.
    std::size_t i = 0;
    while (i < script.size()) {
        while (i < script.size() && script[i].op == EditOp::Equal) ++i;
        if (i == script.size()) break;
        std::size_t first = i >= context ? i - context : 0;
        std::size_t last = i;  // one past the last change of the hunk
        std::size_t j = i;
        while (j < script.size()) {
            if (script[j].op != EditOp::Equal) {
                last = ++j;
                continue;
            }
            std::size_t run = j;
            while (run < script.size() && script[run].op == EditOp::Equal) ++run;
            if (run == script.size() || run - j > 2 * context) break;
            j = run;
        }
        const std::size_t end = std::min(script.size(), last + context);
        std::size_t oldStart = 0, newStart = 0, oldCount = 0, newCount = 0;
        bool haveOld = false, haveNew = false;
        for (std::size_t k = first; k < end; ++k) {
            const Edit& e = script[k];
            if (e.op != EditOp::Insert) {
                if (!haveOld) oldStart = e.oldLine, haveOld = true;
                ++oldCount;
            }
            if (e.op != EditOp::Delete) {
                if (!haveNew) newStart = e.newLine, haveNew = true;
                ++newCount;
            }
        }
        // An empty side starts where the hunk sits: after the lines before it.
        if (!haveOld) oldStart = script[first].oldLine;
        if (!haveNew) newStart = script[first].newLine;
        out += paint(kCyan,
                     "@@ -" + range(oldStart, oldCount) + " +" + range(newStart, newCount) + " @@");
        for (std::size_t k = first; k < end; ++k) {
            const Edit& e = script[k];
            switch (e.op) {
                case EditOp::Equal:
                    out += " " + a[e.oldLine] + "\n";
                    break;
                case EditOp::Delete:
                    out += paint(kRed, "-" + a[e.oldLine]);
                    break;
                case EditOp::Insert:
                    out += paint(kGreen, "+" + b[e.newLine]);
                    break;
            }
        }
        i = end;
    }
    return out;
}

}  // namespace sluice::plugin
