// A Canary's alerts: where they go (its spec.analysis.alerts' AlertProviders and their Secrets,
// or the controller-wide defaults) and what they say, handed to the notifier. Delivery is the
// notifier's, on its own thread: nothing here waits for a receiver.
#include <spdlog/spdlog.h>

#include "impl.h"
#include "sluice/metricprovider/metric_template.h"

namespace sluice::canarycontroller::detail {

using nlohmann::json;

namespace {

std::string stringAt(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

AlertProviderSpec parseAlertProvider(const json& provider) {
    AlertProviderSpec out;
    const json spec = provider.value("spec", json::object());
    if (!spec.is_object()) return out;
    out.type = stringAt(spec, "type");
    out.channel = stringAt(spec, "channel");
    out.username = stringAt(spec, "username");
    out.address = stringAt(spec, "address");
    out.proxy = stringAt(spec, "proxy");
    if (auto ref = spec.find("secretRef"); ref != spec.end() && ref->is_object())
        out.secretName = stringAt(*ref, "name");
    return out;
}

DestinationResult destinationFor(const AlertProviderSpec& provider,
                                 const std::map<std::string, std::string>* secret) {
    DestinationResult out;
    notify::Destination& to = out.destination;
    if (provider.type.empty()) {
        out.error = "has no spec.type";
        return out;
    }
    to.service = provider.type;
    // Flagger's defaults.
    to.channel = provider.channel.empty() ? "general" : provider.channel;
    to.username = provider.username.empty() ? "sluice" : provider.username;
    to.address = provider.address;
    to.proxy = provider.proxy;
    if (secret) {
        // As Flagger: the Secret's address wins over the spec's; a Slack bot token (Flagger's
        // apiToken) posts through chat.postMessage instead of a webhook.
        auto value = [&](const char* key) {
            auto it = secret->find(key);
            return it == secret->end() ? std::string() : it->second;
        };
        const std::string address = value("address");
        const std::string token = value("token").empty() ? value("apiToken") : value("token");
        if (address.empty() && token.empty()) {
            out.error = "Secret " + provider.secretName + " has neither address nor token";
            return out;
        }
        if (!address.empty()) to.address = address;
        to.token = token;
        if (!value("proxy").empty()) to.proxy = value("proxy");
    }
    if (to.address.empty() && to.token.empty()) out.error = "has no address";
    return out;
}

notify::Severity toNotify(canaryengine::AlertSeverity severity) {
    switch (severity) {
        case canaryengine::AlertSeverity::Warn:
            return notify::Severity::Warn;
        case canaryengine::AlertSeverity::Error:
            return notify::Severity::Error;
        case canaryengine::AlertSeverity::Info:
            break;
    }
    return notify::Severity::Info;
}

notify::Message messageFor(const canaryengine::AlertMessage& alert) {
    notify::Message m;
    m.title = alert.title;
    m.text = alert.text;
    m.severity = toNotify(alert.severity);
    m.fields = alert.fields;
    return m;
}

std::string containerImages(const json& workload) {
    const json* containers = nullptr;
    try {
        containers = &workload.at("spec").at("template").at("spec").at("containers");
    } catch (const json::exception&) {
        return "";
    }
    std::vector<std::string> images;
    if (!containers->is_array()) return "";
    for (const json& c : *containers) {
        if (!c.is_object()) continue;
        const std::string image = stringAt(c, "image");
        if (!image.empty()) images.push_back(stringAt(c, "name") + "=" + image);
    }
    std::string out;
    for (const std::string& i : images) out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::vector<notify::Destination> defaultDestinations(const DefaultAlertOptions& o) {
    std::vector<notify::Destination> out;
    if (!o.slackUrl.empty()) {
        notify::Destination slack;
        slack.service = "slack";
        slack.address = o.slackUrl;
        slack.channel = o.slackChannel;
        slack.username = o.slackUser.empty() ? "sluice" : o.slackUser;
        slack.proxy = o.slackProxy;
        out.push_back(std::move(slack));
    }
    if (!o.msteamsUrl.empty()) {
        notify::Destination teams;
        teams.service = "msteams";
        teams.address = o.msteamsUrl;
        teams.proxy = o.msteamsProxy;
        out.push_back(std::move(teams));
    }
    return out;
}

}  // namespace sluice::canarycontroller::detail
