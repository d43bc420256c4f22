#include "sluice/metricprovider/query_template.h"

#include <cctype>

namespace sluice::metricprovider {
namespace {

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool isIdentifier(std::string_view s) {
    if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
    return s;
}

const std::string* field(const TemplateModel& m, std::string_view name) {
    if (name == "name") return &m.name;
    if (name == "namespace") return &m.namespaceName;
    if (name == "target") return &m.target;
    if (name == "service") return &m.service;
    if (name == "ingress") return &m.ingress;
    if (name == "route") return &m.route;
    if (name == "interval") return &m.interval;
    return nullptr;
}

}  // namespace

RenderResult renderQuery(std::string_view tmpl, const TemplateModel& model) {
    RenderResult out;
    size_t pos = 0;
    bool trimNextText = false;
    auto fail = [&](size_t at, const std::string& what) {
        out.query.clear();
        out.error = "query template, offset " + std::to_string(at) + ": " + what;
        return out;
    };
    while (pos <= tmpl.size()) {
        size_t open = tmpl.find("{{", pos);
        std::string_view text =
            tmpl.substr(pos, open == std::string_view::npos ? tmpl.npos : open - pos);
        if (trimNextText)
            while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
        if (open == std::string_view::npos) {
            out.query.append(text);
            break;
        }
        size_t close = tmpl.find("}}", open + 2);
        if (close == std::string_view::npos) return fail(open, "\"{{\" without a closing \"}}\"");
        std::string_view inner = tmpl.substr(open + 2, close - open - 2);
        // Go's trim markers need whitespace next to the dash ("{{-3}}" is the number -3).
        bool trimBefore = inner.size() >= 2 && inner[0] == '-' && isSpace(inner[1]);
        bool trimAfter =
            inner.size() >= 2 && inner.back() == '-' && isSpace(inner[inner.size() - 2]);
        if (trimBefore) inner.remove_prefix(1);
        if (trimAfter) inner.remove_suffix(1);
        if (trimBefore)
            while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
        out.query.append(text);
        trimNextText = trimAfter;
        pos = close + 2;

        std::string_view expr = trim(inner);
        std::string shown = "{{" + std::string(tmpl.substr(open + 2, close - open - 2)) + "}}";
        if (expr.size() >= 4 && expr.substr(0, 2) == "/*" && expr.substr(expr.size() - 2) == "*/")
            continue;  // a comment renders nothing
        const std::string* value = nullptr;
        std::string what;
        if (expr.substr(0, 10) == "variables.") {
            std::string_view key = expr.substr(10);
            if (!isIdentifier(key))
                return fail(open, shown + ": variable names are letters, digits and '_'");
            auto it = model.variables.find(std::string(key));
            if (it == model.variables.end())
                return fail(open, shown + ": the metric's templateVariables have no \"" +
                                      std::string(key) + "\"");
            value = &it->second;
            what = "templateVariables." + std::string(key);
        } else {
            value = field(model, expr);
            if (!value)
                return fail(open, "unknown placeholder " + shown +
                                      "; supported: name, namespace, target, service, ingress, "
                                      "route, interval, variables.<key>");
            what = std::string(expr);
        }
        if (value->empty()) {
            std::string hint = expr == "ingress" ? " (the Canary has no ingressRef)"
                               : expr == "route" ? " (the Canary has no routeRef)"
                                                 : "";
            return fail(open, shown + ": " + what + " is empty" + hint);
        }
        out.query += *value;
    }
    return out;
}

std::string promDuration(std::chrono::milliseconds d) {
    using namespace std::chrono;
    if (d <= milliseconds::zero()) return "0s";
    std::string out;
    auto take = [&](auto unit, const char* suffix) {
        auto n = duration_cast<decltype(unit)>(d);
        if (n.count() > 0) {
            out += std::to_string(n.count()) + suffix;
            d -= duration_cast<milliseconds>(n);
        }
    };
    take(hours(1), "h");
    take(minutes(1), "m");
    take(seconds(1), "s");
    take(milliseconds(1), "ms");
    return out;
}

}  // namespace sluice::metricprovider
