// Microsoft Teams. An Office 365 connector gets a MessageCard:
//   {"@type": "MessageCard", "@context": "https://schema.org/extensions",
//    "themeColor": "2EB886|DAA038|A30200", "summary": "<title>", "title": "<title>",
//    "text": "<text>", "sections": [{"facts": [{"name": ..., "value": ...}]}]}
// "sections" only when there are fields. Card text is Markdown with some HTML, so &, < and >
// are escaped and each line becomes a paragraph (Markdown joins single line breaks).
//
// A Workflows (Power Automate) webhook, which replaces connectors and is told apart by its
// host (*.logic.azure.com, *.powerplatform.com), gets the Adaptive Card its "post to a
// channel" flow expects:
//   {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
//    "content": {"type": "AdaptiveCard", "version": "1.4", "$schema": "...", "body": [
//      {"type": "TextBlock", "text": "<title>", "weight": "Bolder", "size": "Medium",
//       "color": "Good|Warning|Attention", "wrap": true},
//      {"type": "TextBlock", "text": "<text>", "wrap": true},
//      {"type": "FactSet", "facts": [{"title": ..., "value": ...}]}]}}]}
// (the text block only with text, the fact set only with fields). Adaptive Cards have no HTML.
#include <cctype>

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

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isWorkflowWebhook(const std::string& url) {
    std::string host = hostOf(url);
    host = host.substr(0, host.find(':'));
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return endsWith(host, ".logic.azure.com") || endsWith(host, ".powerplatform.com");
}

const char* adaptiveColour(Severity s) {
    switch (s) {
        case Severity::Info:
            return "Good";
        case Severity::Warn:
            return "Warning";
        case Severity::Error:
            return "Attention";
    }
    return "Good";
}

json adaptiveCard(const Message& message) {
    json body = json::array();
    body.push_back({{"type", "TextBlock"},
                    {"text", message.title.empty() ? message.text : message.title},
                    {"weight", "Bolder"},
                    {"size", "Medium"},
                    {"color", adaptiveColour(message.severity)},
                    {"wrap", true}});
    if (!message.title.empty() && !message.text.empty())
        body.push_back({{"type", "TextBlock"}, {"text", message.text}, {"wrap", true}});
    if (!message.fields.empty()) {
        json facts = json::array();
        for (const auto& [name, value] : message.fields)
            facts.push_back({{"title", name}, {"value", value}});
        body.push_back({{"type", "FactSet"}, {"facts", facts}});
    }
    json card = {{"type", "AdaptiveCard"},
                 {"version", "1.4"},
                 {"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
                 {"body", body}};
    return {
        {"type", "message"},
        {"attachments", json::array({{{"contentType", "application/vnd.microsoft.card.adaptive"},
                                      {"content", card}}})}};
}

class MsTeams final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("msteams", message);
        requireHttpUrl(to.address, "msteams: address (the webhook URL)");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json";
        if (isWorkflowWebhook(to.address)) {
            call.body = dumpJson(adaptiveCard(message));
            return call;
        }
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
