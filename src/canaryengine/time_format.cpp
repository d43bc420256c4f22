#include "sluice/canaryengine/time_format.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace sluice::canaryengine {

namespace {

// Nanoseconds per unit, longest unit names first so "ms" is not read as "m".
struct Unit {
    std::string_view name;
    double nanos;
};
constexpr Unit kUnits[] = {
    {"ns", 1.0}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3},
    {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
};

}  // namespace

std::optional<Duration> parseGoDuration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    if (text.front() == '+') text.remove_prefix(1);
    if (text == "0") return Duration::zero();
    double totalNanos = 0;
    while (!text.empty()) {
        size_t digits = 0;
        bool sawDigit = false, sawDot = false;
        while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                        (text[digits] == '.' && !sawDot))) {
            if (text[digits] == '.')
                sawDot = true;
            else
                sawDigit = true;
            ++digits;
        }
        if (!sawDigit) return std::nullopt;
        double number = std::strtod(std::string(text.substr(0, digits)).c_str(), nullptr);
        text.remove_prefix(digits);
        const Unit* matched = nullptr;
        for (const Unit& unit : kUnits) {
            if (text.substr(0, unit.name.size()) == unit.name &&
                (matched == nullptr || unit.name.size() > matched->name.size())) {
                matched = &unit;
            }
        }
        if (matched == nullptr) return std::nullopt;
        text.remove_prefix(matched->name.size());
        totalNanos += number * matched->nanos;
    }
    if (totalNanos > 1e18) return std::nullopt;
    return Duration(static_cast<Duration::rep>(totalNanos / 1e6));
}

std::string formatGoDuration(Duration d) {
    auto ms = d.count();
    if (ms == 0) return "0s";
    std::string out;
    if (ms < 0) {
        out = "-";
        ms = -ms;
    }
    if (ms < 1000) return out + std::to_string(ms) + "ms";
    long long hours = ms / 3'600'000;
    long long minutes = (ms / 60'000) % 60;
    long long seconds = (ms / 1000) % 60;
    long long millis = ms % 1000;
    if (hours > 0) out += std::to_string(hours) + "h";
    if (hours > 0 || minutes > 0) out += std::to_string(minutes) + "m";
    out += std::to_string(seconds);
    if (millis > 0) {
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03lld", millis);
        std::string fraction = frac;
        while (fraction.back() == '0') fraction.pop_back();
        out += fraction;
    }
    return out + "s";
}

std::optional<Time> parseTimestamp(std::string_view text) {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    int consumed = 0;
    std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                    &second, &consumed) != 6 ||
        consumed != 19) {
        return std::nullopt;
    }
    std::string_view rest = text.substr(19);
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        size_t n = 0;
        while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
        if (n == 0) return std::nullopt;
        rest.remove_prefix(n);  // status times have second precision; fractions are dropped
    }
    int offsetMinutes = 0;
    if (rest == "Z" || rest == "z") {
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int oh = 0, om = 0;
        if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2) {
            return std::nullopt;
        }
        offsetMinutes = (rest[0] == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
        return std::nullopt;
    }
    using namespace std::chrono;
    year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                        std::chrono::day{static_cast<unsigned>(day)}};
    if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    return sys_days{date} + hours{hour} + minutes{minute} + seconds{second} -
           minutes{offsetMinutes};
}

std::string formatTimestamp(Time t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto days = floor<std::chrono::days>(secs);
    year_month_day date{days};
    hh_mm_ss<seconds> tod{secs - days};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<long long>(tod.hours().count()),
                  static_cast<long long>(tod.minutes().count()),
                  static_cast<long long>(tod.seconds().count()));
    return buf;
}

}  // namespace sluice::canaryengine
