#pragma once
// Small string helpers shared by the controllers' messages.
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// The parts with `separator` between them. A separator goes only after text already written,
// so empty parts at the front leave none: join({"", "a"}, ", ") is "a".
std::string join(const std::vector<std::string>& parts, std::string_view separator);

}  // namespace sluice
