// Slack: an incoming webhook, or chat.postMessage with a bot token.
//
// Both take the same body:
//   {"text": "<title>\n<text>", "channel"?: ..., "username"?: ...,
//    "attachments": [{"color": "good|warning|danger", "fallback": "<title>",
//                     "fields": [{"title": name, "value": value, "short": ...}]}]}
// ("short", side by side, for values of at most 40 bytes) with &, < and > escaped as Slack
// asks (otherwise "<!channel>" would ping everyone and "<http://x|y>" would become a link).
// chat.postMessage answers 200 even on failure, with
// {"ok": false, "error": "channel_not_found"}.
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

// Slack's error answers are short codes ("channel_not_found", "no_service"); anything else
// (an HTML error page from a proxy) is not worth quoting.
bool isErrorCode(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!(std::islower(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
              std::isdigit(static_cast<unsigned char>(c))))
            return false;
    return true;
}

std::string stripTrailingSlash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

class Slack final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("slack", message);
        HttpCall call;
        if (to.token.empty()) {
            requireHttpUrl(to.address, "slack: address (the incoming webhook URL)");
            call.url = to.address;
        } else {
            if (to.channel.empty())
                throw std::invalid_argument("slack: channel is required with a token");
            std::string base = to.address.empty() ? "https://slack.com" : to.address;
            requireHttpUrl(base, "slack: address (the API base URL)");
            call.url = stripTrailingSlash(base) + "/api/chat.postMessage";
            call.headers["Authorization"] = "Bearer " + to.token;
        }
        call.headers["Content-Type"] = "application/json; charset=utf-8";

        json fields = json::array();
        for (const auto& [name, value] : message.fields)
            fields.push_back({{"title", escapeEntities(name)},
                              {"value", escapeEntities(value)},
                              {"short", value.size() <= 40}});
        json attachment = {
            {"color", slackColour(message.severity)},
            {"fallback", escapeEntities(message.title.empty() ? message.text : message.title)},
            {"fields", fields}};
        json body = {{"text", escapeEntities(joinTitleText(message))},
                     {"attachments", json::array({attachment})}};
        if (!to.channel.empty()) body["channel"] = to.channel;
        if (!to.username.empty()) body["username"] = to.username;
        call.body = dumpJson(body);
        return call;
    }

    std::optional<std::string> failure(const HttpAnswer& answer) const override {
        if (auto failed = Service::failure(answer)) {
            if (answer.status != 0 && isErrorCode(answer.body)) *failed += ": " + answer.body;
            return failed;
        }
        // An incoming webhook answers "ok"; chat.postMessage a JSON object with "ok".
        json reply = json::parse(answer.body, nullptr, false);
        if (reply.is_object() && reply.contains("ok") && reply["ok"] == false) {
            std::string error = "slack: ";
            auto it = reply.find("error");
            error += it != reply.end() && it->is_string() && isErrorCode(it->get<std::string>())
                         ? it->get<std::string>()
                         : "ok false";
            return error;
        }
        return std::nullopt;
    }
};

}  // namespace

std::unique_ptr<Service> makeSlack() {
    return std::make_unique<Slack>();
}

}  // namespace sluice::notify::detail
