// The service table, severities, destinations' labels and the helpers the renderers share.
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "internal.h"

namespace sluice::notify {

const char* toString(Severity s) {
    switch (s) {
        case Severity::Info:
            return "info";
        case Severity::Warn:
            return "warn";
        case Severity::Error:
            return "error";
    }
    return "info";
}

std::optional<Severity> parseSeverity(const std::string& text) {
    std::string s = text;
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (s == "info") return Severity::Info;
    if (s == "warn" || s == "warning") return Severity::Warn;
    if (s == "error") return Severity::Error;
    return std::nullopt;
}

bool reaches(Severity message, Severity subscribed) {
    return static_cast<int>(message) >= static_cast<int>(subscribed);
}

std::string Destination::label() const {
    std::string host = detail::hostOf(address);
    if (host.empty() && !token.empty() && address.empty()) host = "slack.com";
    return service + " (" + (host.empty() ? "no address" : host) + ")";
}

std::optional<std::string> Service::failure(const HttpAnswer& answer) const {
    if (answer.status >= 200 && answer.status < 300) return std::nullopt;
    if (answer.status == 0) return answer.error.empty() ? "no answer" : answer.error;
    return "status " + std::to_string(answer.status);
}

const std::map<std::string, std::unique_ptr<Service>>& builtinServices() {
    static const auto* services = [] {
        auto* m = new std::map<std::string, std::unique_ptr<Service>>;
        (*m)["slack"] = detail::makeSlack();
        (*m)["msteams"] = detail::makeMsTeams();
        (*m)["discord"] = detail::makeDiscord();
        (*m)["rocket"] = detail::makeRocket();
        (*m)["gchat"] = detail::makeGChat();
        (*m)["generic"] = detail::makeGeneric();
        return m;
    }();
    return *services;
}

namespace {
// Argo CD's notification service names for the same services.
const std::map<std::string, std::string>& aliases() {
    static const std::map<std::string, std::string> a = {
        {"teams", "msteams"},
        {"googlechat", "gchat"},
        {"rocketchat", "rocket"},
        {"webhook", "generic"},
    };
    return a;
}
}  // namespace

const Service* findService(const std::string& name) {
    const auto& services = builtinServices();
    auto alias = aliases().find(name);
    auto it = services.find(alias == aliases().end() ? name : alias->second);
    return it == services.end() ? nullptr : it->second.get();
}

std::vector<std::string> serviceNames() {
    std::vector<std::string> names;
    for (const auto& [name, service] : builtinServices()) names.push_back(name);
    return names;  // std::map: already sorted
}

namespace detail {

namespace {
bool hasScheme(const std::string& url, const std::string& scheme) {
    if (url.size() < scheme.size() + 3) return false;
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    return url.compare(scheme.size(), 3, "://") == 0;
}
}  // namespace

std::string hostOf(const std::string& url) {
    std::size_t start;
    if (hasScheme(url, "https"))
        start = 8;
    else if (hasScheme(url, "http"))
        start = 7;
    else
        return "";
    std::size_t end = url.find_first_of("/?#", start);
    std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
    auto at = authority.rfind('@');
    if (at != std::string::npos) authority = authority.substr(at + 1);
    return authority;
}

void requireHttpUrl(const std::string& url, const std::string& what) {
    if (url.empty()) throw std::invalid_argument(what + " is required");
    if (hostOf(url).empty() || url.find_first_of(" \t\r\n") != std::string::npos)
        throw std::invalid_argument(what + " is not an http(s) URL");
}

void requireContent(const std::string& service, const Message& message) {
    if (message.title.empty() && message.text.empty())
        throw std::invalid_argument(service + ": the message has neither title nor text");
}

std::string escapeEntities(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string joinTitleText(const Message& message) {
    if (message.title.empty()) return message.text;
    if (message.text.empty()) return message.title;
    return message.title + "\n" + message.text;
}

const char* slackColour(Severity s) {
    switch (s) {
        case Severity::Info:
            return "good";
        case Severity::Warn:
            return "warning";
        case Severity::Error:
            return "danger";
    }
    return "good";
}

const char* hexColour(Severity s) {
    switch (s) {
        case Severity::Info:
            return "#2EB886";
        case Severity::Warn:
            return "#DAA038";
        case Severity::Error:
            return "#A30200";
    }
    return "#2EB886";
}

int rgbColour(Severity s) {
    return std::stoi(std::string(hexColour(s) + 1), nullptr, 16);
}

std::string truncateUtf8(const std::string& text, std::size_t max) {
    if (text.size() <= max) return text;
    if (max < 3) return text.substr(0, max);
    std::size_t cut = max - 3;
    // Back off continuation bytes (10xxxxxx) so no code point is split.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return text.substr(0, cut) + "...";
}

}  // namespace detail
}  // namespace sluice::notify
