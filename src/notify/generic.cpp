// A generic JSON webhook, for receivers that are not chat services. The body:
//   {"title": "...", "text": "...", "severity": "info|warn|error",
//    "fields": {"<name>": "<value>", ...}}
// (fields as an object: a later field of the same name wins). Destination::headers are added
// to the request, and may override Content-Type (default "application/json").
#include <strings.h>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

// A header name is an RFC 9110 token; values may not hold CR/LF (header injection).
void checkHeader(const std::string& name, const std::string& value) {
    static const std::string extra = "!#$%&'*+-.^_`|~";
    if (name.empty()) throw std::invalid_argument("generic: empty header name");
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && extra.find(c) == std::string::npos)
            throw std::invalid_argument("generic: header name \"" + name + "\" is not valid");
    if (value.find_first_of("\r\n") != std::string::npos)
        throw std::invalid_argument("generic: header \"" + name + "\" has a line break");
}

class Generic final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("generic", message);
        requireHttpUrl(to.address, "generic: address");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json";
        for (const auto& [name, value] : to.headers) {
            checkHeader(name, value);
            // Header names are case-insensitive: a "content-type" replaces the default.
            if (strcasecmp(name.c_str(), "Content-Type") == 0) call.headers.erase("Content-Type");
            call.headers[name] = value;
        }
        json fields = json::object();
        for (const auto& [name, value] : message.fields) fields[name] = value;
        json body = {{"title", message.title},
                     {"text", message.text},
                     {"severity", toString(message.severity)},
                     {"fields", fields}};
        call.body = dumpJson(body);
        return call;
    }
};

}  // namespace

std::unique_ptr<Service> makeGeneric() {
    return std::make_unique<Generic>();
}

}  // namespace sluice::notify::detail
