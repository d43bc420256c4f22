#pragma once
// Helpers shared by the service renderers (not part of the public interface).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "sluice/notify/notifier.h"

namespace sluice::notify::detail {

std::unique_ptr<Service> makeSlack();
std::unique_ptr<Service> makeMsTeams();
std::unique_ptr<Service> makeDiscord();
std::unique_ptr<Service> makeRocket();
std::unique_ptr<Service> makeGChat();
std::unique_ptr<Service> makeGeneric();

// Throws std::invalid_argument unless `url` is an absolute http(s) URL with a host. `what`
// names the field in the message ("slack: address"); the URL itself is never quoted, since
// webhook paths carry secrets.
void requireHttpUrl(const std::string& url, const std::string& what);
// Throws std::invalid_argument when the message has neither title nor text.
void requireContent(const std::string& service, const Message& message);
// The authority of an http(s) URL without user info ("hooks.slack.com", "127.0.0.1:8080");
// "" when there is none.
std::string hostOf(const std::string& url);

// "&" "<" ">" as HTML entities: what Slack's mrkdwn and the HTML subsets of Teams and Google
// Chat cards need so that text is shown as written and never becomes a link or a mention.
std::string escapeEntities(const std::string& text);
// Title and text on separate lines (either may be empty).
std::string joinTitleText(const Message& message);
// Severity colours: Slack's named attachment colours, and hex for the others.
const char* slackColour(Severity s);  // "good", "warning", "danger"
const char* hexColour(Severity s);    // "#2EB886", "#DAA038", "#A30200"
int rgbColour(Severity s);            // the same as an integer (Discord)
// The body as sent: compact, invalid UTF-8 replaced (never an exception for odd input).
inline std::string dumpJson(const nlohmann::json& body) {
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
// Cuts `text` to at most `max` bytes on a UTF-8 boundary, ending with "..." when cut.
std::string truncateUtf8(const std::string& text, std::size_t max);

}  // namespace sluice::notify::detail
