// Discord: its own webhook API rather than the Slack-compatible "/slack" endpoint Flagger
// uses, so the colour, title and fields render natively and mentions can be switched off:
//   {"username"?: ..., "allowed_mentions": {"parse": []},
//    "embeds": [{"title": "<title>", "description": "<text>", "color": 3061894,
//                "fields": [{"name": ..., "value": ..., "inline": true}]}]}
// Embeds are limited (title 256, description 4096, 25 fields of 256/1024), so longer text is
// cut. Discord renders Markdown in descriptions and field values: its markers are escaped.
// A webhook posts to the channel it was made for; Destination::channel is not used.
#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

std::string escapeMarkdown(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\' || c == '*' || c == '_' || c == '~' || c == '`' || c == '|' || c == '>')
            out += '\\';
        out += c;
    }
    return out;
}

// Discord rejects empty field names and values.
std::string nonEmpty(std::string s) {
    return s.empty() ? "-" : s;
}

class Discord final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("discord", message);
        requireHttpUrl(to.address, "discord: address (the webhook URL)");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json";
        json embed = {{"color", rgbColour(message.severity)}};
        if (!message.title.empty()) embed["title"] = truncateUtf8(message.title, 256);
        if (!message.text.empty())
            embed["description"] = truncateUtf8(escapeMarkdown(message.text), 4096);
        if (!message.fields.empty()) {
            json fields = json::array();
            for (const auto& [name, value] : message.fields) {
                if (fields.size() == 25) break;
                fields.push_back({{"name", nonEmpty(truncateUtf8(name, 256))},
                                  {"value", nonEmpty(truncateUtf8(escapeMarkdown(value), 1024))},
                                  {"inline", true}});
            }
            embed["fields"] = fields;
        }
        json body = {{"allowed_mentions", {{"parse", json::array()}}},
                     {"embeds", json::array({embed})}};
        if (!to.username.empty()) body["username"] = truncateUtf8(to.username, 80);
        call.body = dumpJson(body);
        return call;
    }
};

}  // namespace

std::unique_ptr<Service> makeDiscord() {
    return std::make_unique<Discord>();
}

}  // namespace sluice::notify::detail
