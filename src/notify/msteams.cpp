// Microsoft Teams: an Office 365 connector (or a Workflows webhook that accepts the same
// legacy card). The body is a MessageCard:
//   {"@type": "MessageCard", "@context": "https://schema.org/extensions",
//    "themeColor": "2EB886|DAA038|A30200", "summary": "<title>", "title": "<title>",
//    "text": "<text>", "sections": [{"facts": [{"name": ..., "value": ...}]}]}
// "sections" only when there are fields. Card text is Markdown with some HTML, so &, < and >
// are escaped and each line becomes a paragraph (Markdown joins single line breaks).
#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

std::string paragraphs(const std::string& text) {
    std::string out;
    for (char c : escapeEntities(text)) {
        if (c == '\n')
            out += "\n\n";
        else
            out += c;
    }
    return out;
}

class MsTeams final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("msteams", message);
        requireHttpUrl(to.address, "msteams: address (the webhook URL)");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json";
        const std::string title = message.title.empty() ? message.text : message.title;
        json body = {{"@type", "MessageCard"},
                     {"@context", "https://schema.org/extensions"},
                     {"themeColor", hexColour(message.severity) + 1},
                     {"summary", truncateUtf8(title, 200)},
                     {"title", title},
                     {"text", paragraphs(message.title.empty() ? "" : message.text)}};
        if (!message.fields.empty()) {
            json facts = json::array();
            for (const auto& [name, value] : message.fields)
                facts.push_back({{"name", escapeEntities(name)}, {"value", paragraphs(value)}});
            body["sections"] = json::array({{{"facts", facts}}});
        }
        call.body = dumpJson(body);
        return call;
    }
};

}  // namespace

std::unique_ptr<Service> makeMsTeams() {
    return std::make_unique<MsTeams>();
}

}  // namespace sluice::notify::detail
