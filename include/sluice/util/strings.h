#pragma once
// Small string helpers shared by the controllers' messages.
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// The parts with `separator` between them. A separator goes only after text already written,
// so empty parts at the front leave none: join({"", "a"}, ", ") is "a".
std::string join(const std::vector<std::string>& parts, std::string_view separator);

// %XX escapes decoded (RFC 3986); a '%' not followed by two hex digits stays as it is. With
// plusIsSpace, '+' is a space as in form data (application/x-www-form-urlencoded).
std::string percentDecode(std::string_view text, bool plusIsSpace = false);

}  // namespace sluice
