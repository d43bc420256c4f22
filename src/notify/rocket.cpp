// Rocket.Chat: an incoming webhook, which reads Slack's payload:
//   {"text": "<title>\n<text>", "channel"?: ..., "username"?: ...,
//    "attachments": [{"color": "#2EB886|#DAA038|#A30200",
//                     "fields": [{"title": ..., "value": ..., "short": ...}]}]}
// ("short", side by side, for values of at most 40 bytes). Rocket.Chat shows text as written (it
// escapes HTML itself), so only JSON escaping applies.
#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

class Rocket final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("rocket", message);
        requireHttpUrl(to.address, "rocket: address (the webhook URL)");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json";
        json fields = json::array();
        for (const auto& [name, value] : message.fields)
            fields.push_back({{"title", name}, {"value", value}, {"short", value.size() <= 40}});
        json body = {{"text", joinTitleText(message)},
                     {"attachments",
                      json::array({{{"color", hexColour(message.severity)}, {"fields", fields}}})}};
        if (!to.channel.empty()) body["channel"] = to.channel;
        if (!to.username.empty()) body["username"] = to.username;
        call.body = dumpJson(body);
        return call;
    }
};

}  // namespace

std::unique_ptr<Service> makeRocket() {
    return std::make_unique<Rocket>();
}

}  // namespace sluice::notify::detail
