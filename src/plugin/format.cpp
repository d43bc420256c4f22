#include "format.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "sluice/canaryengine/time_format.h"
#include "sluice/util/yaml_json.h"

namespace sluice::plugin {

std::string humanDuration(std::chrono::milliseconds d) {
    using std::to_string;
    const long long seconds = d.count() / 1000;  // Go's int(d.Seconds()) truncates toward zero
    if (seconds < -1) return "<invalid>";
    if (seconds < 0) return "0s";
    if (seconds < 60 * 2) return to_string(seconds) + "s";
    const long long minutes = seconds / 60;
    if (minutes < 10) {
        const long long s = seconds % 60;
        return s == 0 ? to_string(minutes) + "m" : to_string(minutes) + "m" + to_string(s) + "s";
    }
    if (minutes < 60 * 3) return to_string(minutes) + "m";
    const long long hours = minutes / 60;
    if (hours < 8) {
        const long long m = minutes % 60;
        return m == 0 ? to_string(hours) + "h" : to_string(hours) + "h" + to_string(m) + "m";
    }
    if (hours < 48) return to_string(hours) + "h";
    if (hours < 24 * 8) {
        const long long h = hours % 24;
        return h == 0 ? to_string(hours / 24) + "d"
                      : to_string(hours / 24) + "d" + to_string(h) + "h";
    }
    if (hours < 24 * 365 * 2) return to_string(hours / 24) + "d";
    if (hours < 24 * 365 * 8) {
        const long long dy = (hours / 24) % 365;
        return dy == 0 ? to_string(hours / 24 / 365) + "y"
                       : to_string(hours / 24 / 365) + "y" + to_string(dy) + "d";
    }
    return to_string(hours / 24 / 365) + "y";
}

std::string age(const std::string& timestamp, std::chrono::system_clock::time_point now) {
    if (timestamp.empty()) return "<unknown>";
    auto t = canaryengine::parseTimestamp(timestamp);
    if (!t) return "<unknown>";
    return humanDuration(std::chrono::duration_cast<std::chrono::milliseconds>(now - *t));
}

std::string formatRfc3339(std::chrono::system_clock::time_point t) {
    return canaryengine::formatTimestamp(std::chrono::time_point_cast<std::chrono::seconds>(t));
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {
    for (auto& h : headers_)
        std::transform(h.begin(), h.end(), h.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
}

void Table::addRow(std::vector<std::string> cells) {
    cells.resize(headers_.size());
    rows_.push_back(std::move(cells));
}

std::string Table::str() const {
    // kubectl: tabwriter.NewWriter(out, 6 /*minwidth*/, 4, 3 /*padding*/, ' ', 0). A column's
    // width is max(minwidth, widest cell + padding); the last cell of a line is not padded.
    constexpr std::size_t kMinWidth = 6, kPadding = 3;
    std::vector<std::size_t> widths(headers_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    };
    measure(headers_);
    for (const auto& r : rows_) measure(r);
    std::string out;
    auto print = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line.append(std::max(kMinWidth, widths[i] + kPadding) - row[i].size(), ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    };
    print(headers_);
    for (const auto& r : rows_) print(r);
    return out;
}

std::string toJsonText(const json& value) {
    return value.dump(4) + "\n";
}

std::string toYamlText(const json& value) {
    std::string y = jsonToYaml(value);
    if (!y.empty() && y.back() != '\n') y += "\n";
    return y;
}

std::string shortRevision(const std::string& revision) {
    if (revision.size() == 40 && std::all_of(revision.begin(), revision.end(),
                                             [](unsigned char c) { return std::isxdigit(c); }))
        return revision.substr(0, 7);
    return revision;
}

std::string textAt(const json& obj, const std::string& pointer) {
    try {
        json::json_pointer p(pointer);
        if (!obj.contains(p)) return "";
        const json& v = obj.at(p);
        if (v.is_string()) return v.get<std::string>();
        if (v.is_null()) return "";
        return v.dump();
    } catch (const std::exception&) {
        return "";
    }
}

}  // namespace sluice::plugin
