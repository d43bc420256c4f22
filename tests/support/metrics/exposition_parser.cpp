#include "metrics/exposition_parser.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace sluice::testing {

namespace {

[[noreturn]] void fail(int lineNo, const std::string& line, const std::string& why) {
    throw std::runtime_error("exposition line " + std::to_string(lineNo) + ": " + why + ": " +
                             line);
}

bool nameChar(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

double parseNumber(const std::string& text, int lineNo, const std::string& line) {
    if (text == "+Inf") return INFINITY;
    if (text == "-Inf") return -INFINITY;
    if (text == "NaN") return NAN;
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        fail(lineNo, line, "not a number '" + text + "'");
    }
    if (used != text.size()) fail(lineNo, line, "not a number '" + text + "'");
    return v;
}

// The family a sample belongs to: histogram samples carry _bucket/_sum/_count suffixes.
std::string familyOf(const std::string& sample,
                     const std::map<std::string, MetricFamilyText>& families) {
    if (families.count(sample)) return sample;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s = suffix;
        if (sample.size() > s.size() &&
            sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
            std::string base = sample.substr(0, sample.size() - s.size());
            auto it = families.find(base);
            if (it != families.end() &&
                (it->second.type == "histogram" || it->second.type == "summary"))
                return base;
        }
    }
    return "";
}

}  // namespace

ParsedExposition parseExposition(const std::string& text) {
    ParsedExposition out;
    std::istringstream in(text);
    std::string line;
    int lineNo = 0;
    std::map<std::string, bool> typed;
    while (std::getline(in, line)) {
        ++lineNo;
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::istringstream words(line);
            std::string hash, keyword, name;
            words >> hash >> keyword >> name;
            if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
            if (name.empty()) fail(lineNo, line, "no metric name");
            std::string rest;
            std::getline(words, rest);
            if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
            auto& fam = out.families[name];
            fam.name = name;
            if (keyword == "HELP") {
                fam.help = rest;
            } else {
                static const std::vector<std::string> types = {"counter", "gauge", "histogram",
                                                               "summary", "untyped"};
                if (std::find(types.begin(), types.end(), rest) == types.end())
                    fail(lineNo, line, "unknown type '" + rest + "'");
                if (typed[name]) fail(lineNo, line, "second TYPE line for " + name);
                typed[name] = true;
                fam.type = rest;
            }
            continue;
        }
        MetricSample s;
        size_t i = 0;
        while (i < line.size() && nameChar(line[i], i == 0)) ++i;
        if (i == 0) fail(lineNo, line, "no metric name");
        s.name = line.substr(0, i);
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                size_t start = i;
                while (i < line.size() && nameChar(line[i], i == start)) ++i;
                std::string label = line.substr(start, i - start);
                if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
                    fail(lineNo, line, "malformed label");
                i += 2;
                std::string value;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size()) fail(lineNo, line, "dangling escape");
                        char e = line[i + 1];
                        if (e == 'n')
                            value += '\n';
                        else if (e == '\\' || e == '"')
                            value += e;
                        else
                            fail(lineNo, line, "unknown escape");
                        i += 2;
                    } else {
                        value += line[i++];
                    }
                }
                if (i >= line.size()) fail(lineNo, line, "unterminated label value");
                ++i;  // closing quote
                if (s.labels.count(label)) fail(lineNo, line, "duplicate label " + label);
                s.labels[label] = value;
                if (i < line.size() && line[i] == ',') ++i;
            }
            if (i >= line.size()) fail(lineNo, line, "unterminated label set");
            ++i;  // closing brace
        }
        if (i >= line.size() || line[i] != ' ') fail(lineNo, line, "no value");
        std::istringstream rest(line.substr(i + 1));
        std::string value, timestamp;
        rest >> value >> timestamp;
        s.value = parseNumber(value, lineNo, line);
        std::string family = familyOf(s.name, out.families);
        if (family.empty() || !typed[family])
            fail(lineNo, line, "sample before its # HELP/# TYPE lines");
        out.samples.push_back(std::move(s));
    }
    return out;
}

std::vector<MetricSample> ParsedExposition::all(
    const std::string& name, const std::map<std::string, std::string>& labels) const {
    std::vector<MetricSample> found;
    for (const auto& s : samples) {
        if (s.name != name) continue;
        bool match = true;
        for (const auto& [k, v] : labels) {
            auto it = s.labels.find(k);
            if (it == s.labels.end() || it->second != v) match = false;
        }
        if (match) found.push_back(s);
    }
    return found;
}

std::optional<double> ParsedExposition::value(
    const std::string& name, const std::map<std::string, std::string>& labels) const {
    auto found = all(name, labels);
    if (found.empty()) return std::nullopt;
    if (found.size() > 1)
        throw std::runtime_error(std::to_string(found.size()) + " samples of " + name +
                                 " match; give more labels");
    return found[0].value;
}

}  // namespace sluice::testing
