#pragma once
// Line diffs (Myers' O(ND) shortest edit script) and their unified format (diff -u): ---/+++
// headers, "@@ -a,b +c,d @@" hunks with `context` lines around changes, optional ANSI colour.
#include <cstddef>
#include <string>
#include <vector>

namespace sluice::plugin {

enum class EditOp { Equal, Delete, Insert };

struct Edit {
    EditOp op;
    std::size_t oldLine;  // 0-based index into the old lines (Equal, Delete)
    std::size_t newLine;  // 0-based index into the new lines (Equal, Insert)
};

// A shortest edit script turning `a` into `b`; within a run of changes deletions come before
// insertions.
std::vector<Edit> diffLines(const std::vector<std::string>& a, const std::vector<std::string>& b);

// Splits on '\n'; a final newline does not start another (empty) line.
std::vector<std::string> splitLines(const std::string& text);

struct UnifiedOptions {
    std::string oldLabel = "a";
    std::string newLabel = "b";
    int context = 3;
    bool color = false;  // red deletions, green insertions, cyan hunk headers, bold file headers
};

// "" when the texts have the same lines; otherwise the whole unified diff, newline-terminated.
std::string unifiedDiff(const std::string& oldText, const std::string& newText,
                        const UnifiedOptions& options = {});

}  // namespace sluice::plugin
