#pragma once
// Parsing a JSON document while keeping some of its members as text. A cache that stores bulky
// fields packed (a JSON string holding their compact text, as appengine::packStatus does) would
// otherwise build their whole tree only to serialise it again.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::kube {

// A path of object member names from the top of a document, e.g. {"object", "status",
// "resources"}.
using MemberPath = std::vector<std::string>;

// Like nlohmann::json::parse(text, nullptr, false) (discarded on a syntax error), except that
// the value at each of `raw` that exists and is an array or an object is kept as a string
// holding its text exactly as it appears in `text`.
nlohmann::json parseKeepingRaw(std::string_view text, const std::vector<MemberPath>& raw);

}  // namespace sluice::kube
