// AppProject rules: globs, the permission checks, and sync windows with their cron schedules
// and time zones. See include/sluice/appengine/project.h for the semantics (Argo CD's).
#include "sluice/appengine/project.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace sluice::appengine {

using nlohmann::json;

// ------------------------------------------------------------------------------------------
// Globs

namespace {

// The class "[...]" starting at p[at] against c; `end` is set after the ']'. False with end
// unchanged when the class is not closed (then '[' is literal).
bool classMatch(const std::string& p, std::size_t at, char c, std::size_t& end, bool& matched) {
    std::size_t i = at + 1;
    bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
    if (negate) ++i;
    bool found = false;
    bool first = true;
    for (; i < p.size() && (p[i] != ']' || first); first = false) {
        char lo = p[i];
        if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
        char hi = lo;
        if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
            hi = p[i + 2];
            i += 2;
        }
        if (c >= lo && c <= hi) found = true;
        ++i;
    }
    if (i >= p.size()) return false;
    end = i + 1;
    matched = found != negate;
    return true;
}

bool matchFrom(const std::string& p, std::size_t pi, const std::string& v, std::size_t vi) {
    while (pi < p.size()) {
        const char c = p[pi];
        if (c == '*') {
            while (pi < p.size() && p[pi] == '*') ++pi;
            if (pi == p.size()) return true;
            for (std::size_t k = vi; k <= v.size(); ++k)
                if (matchFrom(p, pi, v, k)) return true;
            return false;
        }
        if (c == '{') {
            std::vector<std::string> alternatives(1);
            int depth = 0;
            std::size_t i = pi + 1;
            for (; i < p.size(); ++i) {
                if (p[i] == '\\' && i + 1 < p.size()) {
                    alternatives.back() += p.substr(i++, 2);
                    continue;
                }
                if (p[i] == '}' && depth == 0) break;
                if (p[i] == ',' && depth == 0) {
                    alternatives.emplace_back();
                    continue;
                }
                if (p[i] == '{') ++depth;
                if (p[i] == '}') --depth;
                alternatives.back() += p[i];
            }
            if (i < p.size()) {
                const std::string rest = p.substr(i + 1);
                for (const std::string& alt : alternatives)
                    if (matchFrom(alt + rest, 0, v, vi)) return true;
                return false;
            }
        }
        if (vi >= v.size()) return false;
        if (c == '?') {
            ++pi, ++vi;
            continue;
        }
        if (c == '[') {
            std::size_t end = pi;
            bool matched = false;
            if (classMatch(p, pi, v[vi], end, matched)) {
                if (!matched) return false;
                pi = end, ++vi;
                continue;
            }
        }
        char literal = c;
        if (c == '\\' && pi + 1 < p.size()) literal = p[++pi];
        if (literal != v[vi]) return false;
        ++pi, ++vi;
    }
    return vi == v.size();
}

bool isDeny(const std::string& pattern) {
    return !pattern.empty() && pattern[0] == '!';
}

// Argo CD's globMatch with negation: a deny pattern "matches" what its glob does not.
bool patternMatch(const std::string& pattern, const std::string& value) {
    if (isDeny(pattern)) return !globMatch(pattern.substr(1), value);
    return pattern == "*" || globMatch(pattern, value);
}

// Argo CD compares repository URLs lower-cased, without a trailing ".git" or "/".
std::string normalizeRepo(std::string url) {
    std::transform(url.begin(), url.end(), url.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.size() > 4 && url.compare(url.size() - 4, 4, ".git") == 0) url.resize(url.size() - 4);
    return url;
}

}  // namespace

bool globMatch(const std::string& pattern, const std::string& value) {
    return matchFrom(pattern, 0, value, 0);
}

// ------------------------------------------------------------------------------------------
// Permissions

bool isSourcePermitted(const Project& p, const std::string& repoUrl) {
    const std::string url = normalizeRepo(repoUrl);
    bool anyMatched = false;
    for (const std::string& raw : p.sourceRepos) {
        const std::string pattern = isDeny(raw) ? "!" + normalizeRepo(raw.substr(1))
                                                : (raw == "*" ? raw : normalizeRepo(raw));
        if (patternMatch(pattern, url))
            anyMatched = true;
        else if (isDeny(pattern))
            return false;
    }
    return anyMatched;
}

bool isDestinationPermitted(const Project& p, const AppDestination& d) {
    bool anyMatched = false, denied = false;
    for (const ProjectDestination& item : p.destinations) {
        const bool nameMatched = !d.name.empty() && patternMatch(item.name, d.name);
        const bool serverMatched = !d.server.empty() && patternMatch(item.server, d.server);
        const bool nsMatched = patternMatch(item.namespace_, d.namespace_);
        if ((serverMatched || nameMatched) && nsMatched)
            anyMatched = true;
        else if ((!nameMatched && isDeny(item.name)) || (!serverMatched && isDeny(item.server)) ||
                 (!nsMatched && isDeny(item.namespace_)))
            denied = true;
    }
    // Only the clusters scoped to this project then (a cluster Secret's data.project).
    if (p.permitOnlyProjectScopedClusters && d.clusterProject != p.name) return false;
    return anyMatched && !denied;
}

namespace {
bool inList(const std::vector<GroupKind>& list, const std::string& group, const std::string& kind) {
    return std::any_of(list.begin(), list.end(), [&](const GroupKind& gk) {
        return globMatch(gk.kind, kind) && (gk.group == "*" || globMatch(gk.group, group));
    });
}
}  // namespace

bool isGroupKindPermitted(const Project& p, const std::string& group, const std::string& kind,
                          bool namespaced) {
    if (namespaced) {
        const bool white = !p.namespaceWhitelist || inList(*p.namespaceWhitelist, group, kind);
        return white && !inList(p.namespaceBlacklist, group, kind);
    }
    return inList(p.clusterWhitelist, group, kind) && !inList(p.clusterBlacklist, group, kind);
}

bool isSourceNamespacePermitted(const Project& p, const std::string& appNamespace,
                                const std::string& controlNamespace) {
    if (p.builtIn || appNamespace == controlNamespace) return true;
    return std::any_of(p.sourceNamespaces.begin(), p.sourceNamespaces.end(),
                       [&](const std::string& g) { return globMatch(g, appNamespace); });
}

std::string sourceNotPermitted(const Project& p, const std::string& repoUrl) {
    return "application repo " + repoUrl + " is not permitted in project '" + p.name + "'";
}

std::string destinationNotPermitted(const Project& p, const AppDestination& d) {
    const std::string where = d.server.empty() ? "name '" + d.name : "server '" + d.server;
    return "application destination " + where + "' and namespace '" + d.namespace_ +
           "' do not match any of the allowed destinations in project '" + p.name + "'";
}

std::string missingProject(const std::string& name) {
    return "Application referencing project " + name + " which does not exist";
}

AppDestination resolveDestination(const std::string& server, const std::string& name,
                                  const std::string& ns) {
    AppDestination d{server, name, ns, ""};
    if (d.server.empty() && d.name == kInClusterName) d.server = kInClusterServer;
    if (d.name.empty() && d.server == kInClusterServer) d.name = kInClusterName;
    return d;
}

std::vector<std::string> specViolations(const Project& p, const std::string& appNamespace,
                                        const std::string& controlNamespace,
                                        const std::vector<std::string>& repoUrls,
                                        const AppDestination& destination) {
    std::vector<std::string> out;
    if (!isSourceNamespacePermitted(p, appNamespace, controlNamespace))
        out.push_back("application namespace '" + appNamespace + "' is not permitted in project '" +
                      p.name + "' (spec.sourceNamespaces)");
    for (const std::string& url : repoUrls)
        if (!isSourcePermitted(p, url)) out.push_back(sourceNotPermitted(p, url));
    if (!isDestinationPermitted(p, destination))
        out.push_back(destinationNotPermitted(p, destination));
    return out;
}

std::vector<std::string> resourceViolations(const Project& p, const std::vector<json>& prepared,
                                            const AppDestination& destination) {
    std::vector<std::string> out;
    std::set<std::string> reported;
    for (const json& obj : prepared) {
        const std::string apiVersion = obj.value("apiVersion", "");
        const auto slash = apiVersion.find('/');
        const std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
        const std::string kind = obj.value("kind", "");
        std::string ns;
        if (auto m = obj.find("metadata"); m != obj.end() && m->is_object())
            ns = m->value("namespace", "");
        if (!isGroupKindPermitted(p, group, kind, !ns.empty())) {
            std::string msg = "resource " + group + ":" + kind + " is not permitted in project " +
                              p.name + " (" + (ns.empty() ? "cluster" : "namespace") +
                              "ResourceWhitelist/Blacklist)";
            if (reported.insert(msg).second) out.push_back(std::move(msg));
            continue;
        }
        if (ns.empty() || ns == destination.namespace_) continue;
        AppDestination d = destination;
        d.namespace_ = ns;
        if (isDestinationPermitted(p, d)) continue;
        std::string msg =
            "namespace " + ns + " is not permitted in project '" + p.name + "' (spec.destinations)";
        if (reported.insert(msg).second) out.push_back(std::move(msg));
    }
    return out;
}

ImpersonationResult serviceAccountToImpersonate(const Project& p, const std::string& clusterServer,
                                                const std::string& destinationServer,
                                                const std::string& destinationNamespace,
                                                const std::string& appNamespace) {
    if (p.destinationServiceAccounts.empty()) return {};
    // The destination namespace is optional; the Application's own stands in for it (for the
    // account's namespace and the message, not for the match, as in Argo CD).
    const std::string saNamespace =
        destinationNamespace.empty() ? appNamespace : destinationNamespace;
    for (const DestinationServiceAccount& item : p.destinationServiceAccounts) {
        if (!patternMatch(item.server, clusterServer) ||
            !patternMatch(item.namespace_, destinationNamespace))
            continue;
        const std::string& sa = item.defaultServiceAccount;
        const bool blank = sa.find_first_not_of(' ') == std::string::npos;
        if (blank || sa.find_first_of("!*[]{}\\/") != std::string::npos)
            return {"", "default service account contains invalid chars '" + sa + "'"};
        if (sa.find(':') != std::string::npos) return {"system:serviceaccount:" + sa, ""};
        return {"system:serviceaccount:" + saNamespace + ":" + sa, ""};
    }
    return {"", "no matching service account found for destination server " + destinationServer +
                    " and namespace " + saNamespace};
}

// ------------------------------------------------------------------------------------------
// Parsing

namespace {

std::vector<std::string> strings(const json& spec, const char* field) {
    std::vector<std::string> out;
    if (auto it = spec.find(field); it != spec.end() && it->is_array())
        for (const json& s : *it)
            if (s.is_string()) out.push_back(s.get<std::string>());
    return out;
}

std::vector<GroupKind> groupKinds(const json& list) {
    std::vector<GroupKind> out;
    if (!list.is_array()) return out;
    for (const json& gk : list)
        if (gk.is_object()) out.push_back({gk.value("group", ""), gk.value("kind", "")});
    return out;
}

void parseWindows(const json& spec, ProjectParse& out) {
    auto it = spec.find("syncWindows");
    if (it == spec.end() || !it->is_array()) return;
    for (std::size_t i = 0; i < it->size(); ++i) {
        const json& w = (*it)[i];
        if (!w.is_object()) continue;
        const std::string at = "spec.syncWindows[" + std::to_string(i) + "].";
        SyncWindow sw;
        sw.kind = w.value("kind", "");
        sw.schedule = w.value("schedule", "");
        sw.duration = w.value("duration", "");
        sw.timeZone = w.value("timeZone", "");
        sw.applications = strings(w, "applications");
        sw.namespaces = strings(w, "namespaces");
        sw.clusters = strings(w, "clusters");
        sw.manualSync = w.value("manualSync", false);
        sw.andOperator = w.value("andOperator", false);
        std::string error;
        if (sw.kind != "allow" && sw.kind != "deny")
            out.errors.push_back(at + "kind: \"" + sw.kind + "\" is neither allow nor deny");
        if (auto cron = CronSchedule::parse(sw.schedule, error))
            sw.cron = *cron;
        else
            out.errors.push_back(at + "schedule: " + error);
        if (auto d = parseGoDuration(sw.duration); d && d->count() > 0)
            sw.length = *d;
        else
            out.errors.push_back(at + "duration: \"" + sw.duration + "\" is not a duration");
        sw.zone = TimeZone::load(sw.timeZone, error);
        if (!sw.zone) out.errors.push_back(at + "timeZone: " + error);
        out.project.syncWindows.push_back(std::move(sw));
    }
}

}  // namespace

ProjectParse parseProject(const json& appProject) {
    ProjectParse out;
    Project& p = out.project;
    if (auto m = appProject.find("metadata"); m != appProject.end() && m->is_object())
        p.name = m->value("name", "");
    const json spec = appProject.value("spec", json::object());
    if (!spec.is_object()) return out;
    p.sourceRepos = strings(spec, "sourceRepos");
    if (auto it = spec.find("destinations"); it != spec.end() && it->is_array())
        for (const json& d : *it)
            if (d.is_object())
                p.destinations.push_back(
                    {d.value("server", ""), d.value("name", ""), d.value("namespace", "")});
    p.clusterWhitelist = groupKinds(spec.value("clusterResourceWhitelist", json()));
    p.clusterBlacklist = groupKinds(spec.value("clusterResourceBlacklist", json()));
    // Absent (or null) and [] differ: absent allows every namespaced kind, [] none.
    if (auto it = spec.find("namespaceResourceWhitelist"); it != spec.end() && it->is_array())
        p.namespaceWhitelist = groupKinds(*it);
    p.namespaceBlacklist = groupKinds(spec.value("namespaceResourceBlacklist", json()));
    p.sourceNamespaces = strings(spec, "sourceNamespaces");
    p.permitOnlyProjectScopedClusters = spec.value("permitOnlyProjectScopedClusters", false);
    if (auto it = spec.find("destinationServiceAccounts"); it != spec.end() && it->is_array())
        for (const json& d : *it)
            if (d.is_object())
                p.destinationServiceAccounts.push_back({d.value("server", ""),
                                                        d.value("namespace", ""),
                                                        d.value("defaultServiceAccount", "")});
    parseWindows(spec, out);
    return out;
}

Project builtInDefaultProject() {
    Project p;
    p.name = kDefaultProject;
    p.sourceRepos = {"*"};
    p.destinations = {{"*", "*", "*"}};
    p.clusterWhitelist = {{"*", "*"}};
    p.builtIn = true;
    return p;
}

const std::vector<std::string>& projectFieldsWithoutEffect() {
    static const std::vector<std::string> kFields = {"spec.roles", "spec.signatureKeys"};
    return kFields;
}

std::vector<std::string> unimplementedProjectFieldsIn(const json& appProject) {
    std::vector<std::string> out;
    const json spec = appProject.value("spec", json::object());
    if (!spec.is_object()) return out;
    for (const std::string& path : projectFieldsWithoutEffect()) {
        auto it = spec.find(path.substr(5));
        if (it == spec.end() || it->is_null() || (it->is_array() && it->empty())) continue;
        out.push_back(path);
    }
    return out;
}

// ------------------------------------------------------------------------------------------
// Durations and cron schedules

std::optional<std::chrono::seconds> parseGoDuration(const std::string& text) {
    if (text.empty()) return std::nullopt;
    if (text == "0") return std::chrono::seconds(0);
    double total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t start = i;
        while (i < text.size() &&
               (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
            ++i;
        if (i == start) return std::nullopt;
        double value = 0;
        try {
            value = std::stod(text.substr(start, i - start));
        } catch (const std::exception&) {
            return std::nullopt;
        }
        std::size_t unitStart = i;
        while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) &&
               text[i] != '.')
            ++i;
        const std::string unit = text.substr(unitStart, i - unitStart);
        static const std::map<std::string, double> kUnits = {
            {"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
            {"s", 1},     {"m", 60},    {"h", 3600}};
        auto u = kUnits.find(unit);
        if (u == kUnits.end()) return std::nullopt;
        total += value * u->second;
    }
    return std::chrono::seconds(static_cast<int64_t>(total));
}

namespace {

int nameValue(std::string s, const char* const* names, int count, int base) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    for (int i = 0; i < count; ++i)
        if (s == names[i]) return base + i;
    return -1;
}

// A number or a name of the field; -1 when it is neither.
int fieldValue(const std::string& s, int field) {
    static const char* const kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
    static const char* const kDays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
    if (!s.empty() &&
        std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
        return s.size() > 3 ? -1 : std::stoi(s);
    if (field == 3) return nameValue(s, kMonths, 12, 1);
    if (field == 4) return nameValue(s, kDays, 7, 0);
    return -1;
}

// One field of a schedule into bits; star is set when it is "*" or "?" without a step.
bool parseField(const std::string& text, int field, uint64_t& bits, bool& star,
                std::string& error) {
    static const int kMin[] = {0, 0, 1, 1, 0};
    static const int kMax[] = {59, 23, 31, 12, 7};
    static const char* const kNames[] = {"minute", "hour", "day of month", "month", "day of week"};
    std::stringstream parts(text);
    for (std::string part; std::getline(parts, part, ',');) {
        const auto slash = part.find('/');
        const std::string range = part.substr(0, slash);
        int lo = kMin[field], hi = kMax[field], step = 1;
        bool partStar = false;
        if (range == "*" || range == "?") {
            partStar = true;
        } else {
            const auto dash = range.find('-');
            lo = fieldValue(range.substr(0, dash), field);
            hi = dash == std::string::npos ? (slash == std::string::npos ? lo : kMax[field])
                                           : fieldValue(range.substr(dash + 1), field);
        }
        if (slash != std::string::npos) {
            const std::string s = part.substr(slash + 1);
            step = fieldValue(s, 0);
            if (step > 1) partStar = false;
        }
        if (lo < kMin[field] || hi > kMax[field] || lo > hi || step < 1) {
            error = "\"" + part + "\" is not a valid " + kNames[field];
            return false;
        }
        for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << (field == 4 && v == 7 ? 0 : v);
        star = star || partStar;
    }
    return true;
}

}  // namespace

std::optional<CronSchedule> CronSchedule::parse(const std::string& text, std::string& error) {
    static const std::map<std::string, std::string> kDescriptors = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    std::string spec = text;
    if (auto d = kDescriptors.find(text); d != kDescriptors.end()) spec = d->second;
    std::istringstream in(spec);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.size() != 5) {
        error = "\"" + text + "\" is not a cron schedule of five fields";
        return std::nullopt;
    }
    CronSchedule c;
    uint64_t bits[5] = {};
    bool star[5] = {};
    for (int i = 0; i < 5; ++i)
        if (!parseField(fields[i], i, bits[i], star[i], error)) return std::nullopt;
    c.minutes_ = bits[0];
    c.hours_ = static_cast<uint32_t>(bits[1]);
    c.days_ = static_cast<uint32_t>(bits[2]);
    c.months_ = static_cast<uint16_t>(bits[3]);
    c.weekdays_ = static_cast<uint8_t>(bits[4]);
    c.dayStar_ = star[2];
    c.weekdayStar_ = star[4];
    return c;
}

bool CronSchedule::matchesDay(int day, int month, int weekday) const {
    if (!((months_ >> month) & 1)) return false;
    const bool dayMatch = (days_ >> day) & 1;
    const bool weekdayMatch = (weekdays_ >> weekday) & 1;
    if (dayStar_ || weekdayStar_) return dayMatch && weekdayMatch;
    return dayMatch || weekdayMatch;
}

bool CronSchedule::matches(int minute, int hour, int day, int month, int weekday) const {
    return matchesDay(day, month, weekday) && matchesHour(hour) && matchesMinute(minute);
}

// ------------------------------------------------------------------------------------------
// Time zones: TZif files (RFC 8536), version 2 or later data when present.

namespace {

int64_t readBig(const std::string& b, std::size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(b.at(at + i));
    if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
}

}  // namespace

std::shared_ptr<const TimeZone> TimeZone::load(const std::string& name, std::string& error) {
    static std::mutex mu;
    static std::map<std::string, std::shared_ptr<const TimeZone>> cache;
    if (name.empty() || name == "UTC" || name == "Etc/UTC") {
        static const auto utc = std::make_shared<const TimeZone>();
        return utc;
    }
    std::lock_guard lock(mu);
    if (auto it = cache.find(name); it != cache.end()) return it->second;
    if (name.front() == '/' || name.find("..") != std::string::npos) {
        error = "unknown time zone \"" + name + "\"";
        return nullptr;
    }
    std::ifstream in("/usr/share/zoneinfo/" + name, std::ios::binary);
    const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (b.size() < 44 || b.compare(0, 4, "TZif") != 0) {
        error = "unknown time zone \"" + name + "\"";
        return nullptr;
    }
    try {
        auto counts = [&](std::size_t at) {
            std::vector<int64_t> c;
            for (int i = 0; i < 6; ++i) c.push_back(readBig(b, at + 20 + 4 * i, 4));
            return c;  // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
        };
        std::size_t at = 0;
        int timeBytes = 4;
        auto c = counts(0);
        if (b[4] >= '2') {  // skip the 32-bit block to the 64-bit one
            at = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
            c = counts(at);
            timeBytes = 8;
        }
        std::size_t p = at + 44;
        auto zone = std::make_shared<TimeZone>();
        std::vector<int64_t> times;
        for (int64_t i = 0; i < c[3]; ++i, p += timeBytes)
            times.push_back(readBig(b, p, timeBytes));
        std::vector<int> indices;
        for (int64_t i = 0; i < c[3]; ++i, ++p)
            indices.push_back(static_cast<unsigned char>(b.at(p)));
        std::vector<int32_t> typeOffsets;
        for (int64_t i = 0; i < c[4]; ++i, p += 6)
            typeOffsets.push_back(static_cast<int32_t>(readBig(b, p, 4)));
        if (typeOffsets.empty()) throw std::out_of_range("no types");
        zone->initialOffset_ = typeOffsets[0];
        for (std::size_t i = 0; i < times.size(); ++i) {
            zone->transitions_.push_back(times[i]);
            zone->offsets_.push_back(typeOffsets.at(indices[i]));
        }
        cache[name] = zone;
        return zone;
    } catch (const std::out_of_range&) {
        error = "cannot read the time zone file of \"" + name + "\"";
        return nullptr;
    }
}

int64_t TimeZone::offsetAt(int64_t unixSeconds) const {
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unixSeconds);
    if (it == transitions_.begin()) return initialOffset_;
    return offsets_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
}

// ------------------------------------------------------------------------------------------
// Sync windows

std::string SyncWindow::describe() const {
    std::string s = kind + " " + schedule + " (" + duration;
    if (!timeZone.empty()) s += " " + timeZone;
    return s + ")";
}

bool windowActive(const SyncWindow& w, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    if (!w.zone || w.length.count() <= 0) return false;
    const int64_t nowS = duration_cast<seconds>(now.time_since_epoch()).count();
    const int64_t earliest = nowS - w.length.count();  // a fire must be after this
    int64_t t = nowS - ((nowS % 60) + 60) % 60;        // this minute's start
    // Backwards through the minutes since `earliest`, a day or an hour at a time where the
    // schedule cannot fire.
    while (t > earliest) {
        const int64_t local = t + w.zone->offsetAt(t);
        const int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
        const int64_t secOfDay = local - days * 86400;
        const sys_days day{std::chrono::days(days)};
        const year_month_day ymd{day};
        const int wday = static_cast<int>(std::chrono::weekday{day}.c_encoding());
        if (!w.cron.matchesDay(static_cast<int>(unsigned(ymd.day())),
                               static_cast<int>(unsigned(ymd.month())), wday)) {
            t -= secOfDay - secOfDay % 60 + 60;
            continue;
        }
        const int hour = static_cast<int>(secOfDay / 3600);
        if (!w.cron.matchesHour(hour)) {
            t -= secOfDay % 3600 - secOfDay % 60 + 60;
            continue;
        }
        if (w.cron.matchesMinute(static_cast<int>(secOfDay % 3600 / 60))) return true;
        t -= 60;
    }
    return false;
}

namespace {

bool anyGlob(const std::vector<std::string>& patterns, const std::string& value) {
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string& g) { return !value.empty() && globMatch(g, value); });
}

bool windowMatches(const SyncWindow& w, const std::string& app, const AppDestination& d) {
    std::vector<bool> results;
    if (!w.applications.empty()) results.push_back(anyGlob(w.applications, app));
    if (!w.namespaces.empty()) results.push_back(anyGlob(w.namespaces, d.namespace_));
    if (!w.clusters.empty())
        results.push_back(anyGlob(w.clusters, d.server) || anyGlob(w.clusters, d.name));
    if (results.empty()) return false;
    if (w.andOperator) return std::all_of(results.begin(), results.end(), [](bool b) { return b; });
    return std::any_of(results.begin(), results.end(), [](bool b) { return b; });
}

}  // namespace

SyncWindowVerdict evaluateSyncWindows(const Project& p, const std::string& appName,
                                      const AppDestination& destination,
                                      std::chrono::system_clock::time_point now) {
    SyncWindowVerdict v;
    bool activeDeny = false, denyManual = true, activeAllow = false;
    bool inactiveAllow = false, inactiveAllowManual = false;
    for (const SyncWindow& w : p.syncWindows) {
        if (!windowMatches(w, appName, destination)) continue;
        v.hasWindows = true;
        const bool active = windowActive(w, now);
        if (active) v.active.push_back(w.describe());
        if (w.kind == "deny" && active) {
            activeDeny = true;
            denyManual = denyManual && w.manualSync;
        } else if (w.kind == "allow" && active) {
            activeAllow = true;
        } else if (w.kind == "allow") {
            inactiveAllow = true;
            inactiveAllowManual = inactiveAllowManual || w.manualSync;
        }
    }
    if (activeDeny) {
        v.automatedAllowed = false;
        v.manualAllowed = denyManual;
        v.reason = "an active deny window";
    } else if (!activeAllow && inactiveAllow) {
        v.automatedAllowed = false;
        v.manualAllowed = inactiveAllowManual;
        v.reason = "no allow window is active";
    }
    return v;
}

}  // namespace sluice::appengine
