#pragma once
// Checks of Application spec values shared by the spec's parsers (spec.cpp, source_spec.cpp).
#include <cctype>
#include <string>
#include <string_view>

namespace sluice::appengine::detail {

inline bool isDnsLabel(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s)
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
            return false;
    return s.front() != '-' && s.back() != '-';
}

// A repository path must stay inside the repository: relative, and no ".." climbing above the
// root (a ".." inside, such as "a/../b", is fine).
inline bool escapesRepository(const std::string& path) {
    if (!path.empty() && path.front() == '/') return true;
    int depth = 0;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        std::string_view part(path.data() + start, end - start);
        if (part == "..") {
            if (--depth < 0) return true;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        start = end + 1;
    }
    return false;
}

}  // namespace sluice::appengine::detail
