// Google Chat: a space's incoming webhook (its URL carries key and token as query).
//   {"text": "<title>\n<text>",
//    "cardsV2"?: [{"cardId": "sluice", "card": {"sections": [{"widgets": [
//        {"decoratedText": {"topLabel": name, "text": value}}, ...]}]}}]}
// The card only when there are fields. Text uses Chat's markup, where "<users/all>" mentions
// everyone and "<url|text>" is a link, and card text an HTML subset: &, < and > are escaped (and
// card line breaks are <br>).
#include "internal.h"

namespace sluice::notify::detail {
namespace {

using nlohmann::json;

// Card text is HTML: line breaks are <br>.
std::string cardText(const std::string& text) {
    std::string out;
    for (char c : escapeEntities(text)) {
        if (c == '\n')
            out += "<br>";
        else
            out += c;
    }
    return out;
}

class GChat final : public Service {
  public:
    HttpCall render(const Destination& to, const Message& message) const override {
        requireContent("gchat", message);
        requireHttpUrl(to.address, "gchat: address (the webhook URL)");
        HttpCall call;
        call.url = to.address;
        call.headers["Content-Type"] = "application/json; charset=UTF-8";
        json body = {{"text", escapeEntities(joinTitleText(message))}};
        if (!message.fields.empty()) {
            json widgets = json::array();
            for (const auto& [name, value] : message.fields)
                widgets.push_back(
                    {{"decoratedText",
                      {{"topLabel", escapeEntities(name)}, {"text", cardText(value)}}}});
            json card = {{"sections", json::array({{{"widgets", widgets}}})}};
            body["cardsV2"] = json::array({{{"cardId", "sluice"}, {"card", card}}});
        }
        call.body = dumpJson(body);
        return call;
    }
};

}  // namespace

std::unique_ptr<Service> makeGChat() {
    return std::make_unique<GChat>();
}

}  // namespace sluice::notify::detail
