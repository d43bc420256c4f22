// parseKeepingRaw: one pass over the text finds the members to keep raw (a scanner that only
// tracks nesting and strings), then the rest, with those values replaced by null, is parsed as
// usual and the raw texts are put in place.
#include "sluice/kube/raw_json.h"

#include <optional>
#include <utility>

namespace sluice::kube {

using nlohmann::json;

namespace {

struct RawRange {
    const MemberPath* path;
    std::size_t begin, end;
};

class Scanner {
  public:
    Scanner(std::string_view text, const std::vector<MemberPath>& raw) : t_(text), raw_(raw) {}

    // The ranges of the raw members, in text order; nullopt when the text is not well formed
    // enough to scan (the caller then parses it as usual and lets the parser report it).
    std::optional<std::vector<RawRange>> scan() {
        MemberPath path;
        skipSpace();
        if (!value(path)) return std::nullopt;
        return std::move(ranges_);
    }

  private:
    void skipSpace() {
        while (i_ < t_.size() &&
               (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t'))
            ++i_;
    }
    bool skipString() {  // at '"'
        for (++i_;;) {
            const std::size_t q = t_.find_first_of("\"\\", i_);
            if (q == std::string_view::npos) return false;
            if (t_[q] == '\\') {
                i_ = q + 2;
                continue;
            }
            i_ = q + 1;
            return true;
        }
    }
    bool skipValue() {
        if (i_ >= t_.size()) return false;
        const char c = t_[i_];
        if (c == '"') return skipString();
        if (c != '{' && c != '[') {
            while (i_ < t_.size() && t_[i_] != ',' && t_[i_] != '}' && t_[i_] != ']' &&
                   t_[i_] != ' ' && t_[i_] != '\n' && t_[i_] != '\r' && t_[i_] != '\t')
                ++i_;
            return true;
        }
        int depth = 0;
        while (i_ < t_.size()) {
            const char d = t_[i_];
            if (d == '"') {
                if (!skipString()) return false;
                continue;
            }
            if (d == '{' || d == '[') ++depth;
            if ((d == '}' || d == ']') && --depth == 0) {
                ++i_;
                return true;
            }
            ++i_;
        }
        return false;
    }
    const MemberPath* exact(const MemberPath& path) const {
        for (const auto& r : raw_)
            if (r == path) return &r;
        return nullptr;
    }
    bool continues(const MemberPath& path) const {
        for (const auto& r : raw_)
            if (r.size() > path.size() && std::equal(path.begin(), path.end(), r.begin()))
                return true;
        return false;
    }
    // The value at i_, whose place is `path`.
    bool value(MemberPath& path) {
        if (i_ >= t_.size()) return false;
        const char c = t_[i_];
        if (const MemberPath* r = exact(path); r && (c == '{' || c == '[')) {
            const std::size_t begin = i_;
            if (!skipValue()) return false;
            ranges_.push_back({r, begin, i_});
            return true;
        }
        if (c != '{' || !continues(path)) return skipValue();
        return members(path);
    }
    bool members(MemberPath& path) {  // at '{'
        ++i_;
        skipSpace();
        if (i_ < t_.size() && t_[i_] == '}') {
            ++i_;
            return true;
        }
        for (;;) {
            skipSpace();
            if (i_ >= t_.size() || t_[i_] != '"') return false;
            const std::size_t keyBegin = i_;
            if (!skipString()) return false;
            std::string_view quoted = t_.substr(keyBegin, i_ - keyBegin);
            std::string key;
            if (quoted.find('\\') == std::string_view::npos) {
                key.assign(quoted.substr(1, quoted.size() - 2));
            } else {
                json k = json::parse(quoted, nullptr, false);
                if (!k.is_string()) return false;
                key = k.get<std::string>();
            }
            skipSpace();
            if (i_ >= t_.size() || t_[i_] != ':') return false;
            ++i_;
            skipSpace();
            path.push_back(std::move(key));
            const bool ok = value(path);
            path.pop_back();
            if (!ok) return false;
            skipSpace();
            if (i_ < t_.size() && t_[i_] == ',') {
                ++i_;
                continue;
            }
            if (i_ < t_.size() && t_[i_] == '}') {
                ++i_;
                return true;
            }
            return false;
        }
    }

    std::string_view t_;
    const std::vector<MemberPath>& raw_;
    std::size_t i_ = 0;
    std::vector<RawRange> ranges_;
};

}  // namespace

json parseKeepingRaw(std::string_view text, const std::vector<MemberPath>& raw) {
    auto ranges = raw.empty() ? std::nullopt : Scanner(text, raw).scan();
    if (!ranges || ranges->empty()) return json::parse(text, nullptr, false);
    std::string reduced;
    reduced.reserve(text.size());
    std::size_t at = 0;
    for (const auto& r : *ranges) {
        reduced.append(text.substr(at, r.begin - at));
        reduced.append("null");
        at = r.end;
    }
    reduced.append(text.substr(at));
    json doc = json::parse(reduced, nullptr, false);
    if (doc.is_discarded()) return doc;
    for (const auto& r : *ranges) {
        json* v = &doc;
        for (const auto& member : *r.path) {
            if (!v->is_object() || !v->contains(member)) {
                v = nullptr;
                break;
            }
            v = &(*v)[member];
        }
        // A member named twice: the parser kept the last, which may not be this one.
        if (v && v->is_null()) *v = std::string(text.substr(r.begin, r.end - r.begin));
    }
    return doc;
}

}  // namespace sluice::kube
