#include "sluice/render/render.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "sluice/util/yaml_json.h"

namespace sluice::render {
namespace {

using nlohmann::json;

std::vector<std::string> components(const std::string& p) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : p) {
        if (c == '/') {
            if (!cur.empty() && cur != ".") out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty() && cur != ".") out.push_back(cur);
    return out;
}

std::string basePath(const Options& o) {
    try {
        return git::normalisePath(o.path);
    } catch (const git::GitError& e) {
        throw RenderError(o.path, 0, e.what());
    }
}

// Path of `file` relative to `base`, or nullopt-equivalent (false) when outside it.
bool relativeTo(const std::string& base, const std::string& file, std::vector<std::string>& rel) {
    auto b = components(base);
    auto f = components(file);
    if (f.size() <= b.size() || !std::equal(b.begin(), b.end(), f.begin())) return false;
    rel.assign(f.begin() + static_cast<long>(b.size()), f.end());
    return true;
}

std::string lowerExt(const std::string& name) {
    auto dot = name.rfind('.');
    if (dot == std::string::npos) return "";
    std::string e = name.substr(dot);
    for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

bool isKustomization(const std::string& name) {
    return name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization";
}

bool isManifest(const std::string& name) {
    std::string e = lowerExt(name);
    return e == ".yaml" || e == ".yml" || e == ".json";
}

// directory.include / exclude, matched as Argo CD does against the path relative to the
// source path.
bool selectedByGlobs(const std::vector<std::string>& rel, const Options& options) {
    if (options.include.empty() && options.exclude.empty()) return true;
    std::string path;
    for (const auto& c : rel) path.append(path.empty() ? "" : "/").append(c);
    if (!options.include.empty() && !globMatch(options.include, path)) return false;
    return options.exclude.empty() || !globMatch(options.exclude, path);
}

bool relevantRel(const std::vector<std::string>& rel, const Options& options) {
    if (!options.recurse && rel.size() > 1) return false;
    for (const auto& c : rel)
        if (c[0] == '.') return false;  // hidden files and directories
    const std::string& name = rel.back();
    if (!isManifest(name) && !isKustomization(name) && name != "Chart.yaml") return false;
    return selectedByGlobs(rel, options);
}

struct Document {
    int startLine;  // 1-based
    std::string text;
    bool implicit;  // not opened by "---": counts as a document only if it has content
};

bool isMarker(const std::string& line, const char* marker) {
    if (line.compare(0, 3, marker) != 0) return false;
    return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' ||
           line[3] == '\n';
}

// YAML forbids "---" and "..." at column 0 inside any content (block or quoted scalars
// included), so splitting on those lines finds exactly the document boundaries while keeping
// line numbers.
std::vector<Document> splitDocuments(const std::string& text) {
    std::vector<Document> docs{{1, "", true}};
    size_t pos = 0;
    int lineNo = 1;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        size_t next = end == std::string::npos ? text.size() : end + 1;
        std::string line = text.substr(pos, next - pos);
        if (isMarker(line, "---")) {
            docs.push_back({lineNo, line, false});
        } else if (isMarker(line, "...")) {
            docs.back().text += line;
            docs.push_back({lineNo + 1, "", true});
        } else {
            docs.back().text += line;
        }
        pos = next;
        ++lineNo;
    }
    return docs;
}

// Where the object itself starts, past a bare "---", blank lines and comments.
int firstContentLine(const Document& d) {
    size_t pos = 0;
    int line = d.startLine;
    while (pos < d.text.size()) {
        size_t end = d.text.find('\n', pos);
        if (end == std::string::npos) end = d.text.size();
        std::string l = d.text.substr(pos, end - pos);
        auto first = l.find_first_not_of(" \t\r");
        bool skip = first == std::string::npos || l[first] == '#' ||
                    (isMarker(l, "---") && l.find_first_not_of(" \t\r", 3) == std::string::npos);
        if (!skip) return line;
        pos = end + 1;
        ++line;
    }
    return d.startLine;
}

std::string typeName(const json& v) {
    return v.is_array() ? "a list" : v.is_string() ? "a string" : v.is_null() ? "null" : "a scalar";
}

}  // namespace

bool isHookObject(const json& obj) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return false;
    auto an = md->find("annotations");
    if (an == md->end() || !an->is_object()) return false;
    for (const char* key : {"sluice.io/hook", "argocd.argoproj.io/hook", "helm.sh/hook"})
        if (an->contains(key)) return true;
    return false;
}

namespace {

void checkObject(const json& obj, const std::string& file, int line, const std::string& where) {
    auto fail = [&](const std::string& msg) { throw RenderError(file, line, where + msg); };
    if (!obj.is_object()) fail("expected a Kubernetes object (a mapping), got " + typeName(obj));
    auto nonEmptyString = [&](const char* key) {
        auto it = obj.find(key);
        return it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
    };
    if (!nonEmptyString("apiVersion")) fail("missing apiVersion");
    if (!nonEmptyString("kind")) fail("missing kind");
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) fail("missing metadata.name");
    auto named = [&](const char* key) {
        auto it = md->find(key);
        return it != md->end() && it->is_string() && !it->get_ref<const std::string&>().empty();
    };
    // generateName alone names resource hooks only: a sync names them when it creates them.
    if (!named("name") && !(named("generateName") && isHookObject(obj)))
        fail("missing metadata.name");
}

bool isList(const json& obj) {
    if (!obj.is_object()) return false;
    auto kind = obj.find("kind");
    auto items = obj.find("items");
    if (kind == obj.end() || !kind->is_string() || items == obj.end() || !items->is_array())
        return false;
    const auto& k = kind->get_ref<const std::string&>();
    return k.size() >= 4 && k.compare(k.size() - 4, 4, "List") == 0;
}

void addDocument(json doc, const std::string& file, int docIndex, int line,
                 std::vector<Object>& out) {
    std::string where = "document " + std::to_string(docIndex + 1) + ": ";
    if (isList(doc)) {
        int i = 0;
        for (auto& item : doc["items"]) {
            checkObject(item, file, line, where + "item " + std::to_string(i) + ": ");
            out.push_back(Object{std::move(item), file, docIndex, i, line});
            ++i;
        }
        return;
    }
    checkObject(doc, file, line, where);
    out.push_back(Object{std::move(doc), file, docIndex, -1, line});
}

// `stream` is shared by the documents render() reads, so that together they stay within the
// stream limits (aliases included) even though each is parsed on its own.
void renderYaml(const SourceFile& f, const std::string& content, std::vector<Object>& out,
                YamlBudget& stream) {
    int index = 0;
    for (auto& d : splitDocuments(content)) {
        json doc;
        try {
            doc = yamlToJson(d.text, stream);
        } catch (const YamlError& e) {
            int line = e.line > 0 ? d.startLine + e.line - 1 : d.startLine;
            throw RenderError(f.path, line, std::string("invalid YAML: ") + e.what());
        }
        if (doc.is_null()) {
            if (!d.implicit) ++index;  // an explicit empty document still takes a position
            continue;
        }
        addDocument(std::move(doc), f.path, index, firstContentLine(d), out);
        ++index;
    }
}

void renderYaml(const SourceFile& f, const std::string& content, std::vector<Object>& out) {
    YamlBudget stream;
    renderYaml(f, content, out, stream);
}

void renderJson(const SourceFile& f, const std::string& content, std::vector<Object>& out) {
    json doc;
    try {
        doc = json::parse(content);
    } catch (const json::parse_error& e) {
        size_t upto = std::min(content.size(), e.byte > 0 ? e.byte - 1 : 0);
        int line = 1 + static_cast<int>(std::count(
                           content.begin(), content.begin() + static_cast<long>(upto), '\n'));
        // what() reads "[json.exception.parse_error.101] parse error at line 3, column 3: ...":
        // keep the part after the location, which RenderError already gives.
        std::string msg = e.what();
        auto loc = msg.find("parse error at ");
        auto colon = loc == std::string::npos ? loc : msg.find(": ", loc);
        if (colon != std::string::npos) msg = msg.substr(colon + 2);
        throw RenderError(f.path, line, "invalid JSON: " + msg);
    }
    addDocument(std::move(doc), f.path, 0, 0, out);
}

}  // namespace

// Argo CD matches directory.include / exclude with gobwas/glob compiled without separators:
// "*" crosses "/". A pattern is compiled here into its "{}" expansions, each a sequence of
// stars and one-character matchers, so that the classic two-pointer match (one backtrack
// point, O(pattern x text)) is exact and no pattern can take exponential time.
namespace {

struct GlobAtom {
    enum Kind { Star, AnyOne, Literal, Set, Range } kind;
    bool negated = false;
    std::u32string chars;  // Literal: the character; Set: its members; Range: low, high
};
using GlobSeq = std::vector<GlobAtom>;

// Beyond this many "{}" expansions a pattern is refused (it matches nothing), as gobwas
// refuses patterns it cannot compile.
constexpr std::size_t kMaxGlobExpansions = 1024;

// Go ranges over strings by code point, an invalid byte reading as U+FFFD; a pattern with one
// does not compile.
bool decodeUtf8(const std::string& s, std::u32string& out, bool strict) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const int len = b < 0x80         ? 1
                        : (b >> 5) == 6  ? 2
                        : (b >> 4) == 14 ? 3
                        : (b >> 3) == 30 ? 4
                                         : 0;
        char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
        bool ok = len > 0 && i + static_cast<std::size_t>(len) <= s.size();
        for (int k = 1; ok && k < len; ++k) {
            const auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            ok = (c >> 6) == 2;
            cp = (cp << 6) | (c & 0x3F);
        }
        if (!ok && strict) return false;
        out.push_back(ok ? cp : U'\uFFFD');
        i += ok ? static_cast<std::size_t>(len) : 1;
    }
    return true;
}

class GlobParser {
  public:
    explicit GlobParser(std::u32string pattern) : p_(std::move(pattern)) {}

    // All expansions of the pattern, or nothing when it does not compile.
    std::optional<std::vector<GlobSeq>> parse() {
        auto seqs = sequence(false);
        if (!seqs || pos_ != p_.size()) return std::nullopt;
        return seqs;
    }

  private:
    std::u32string p_;
    std::size_t pos_ = 0;

    bool atEnd() const { return pos_ >= p_.size(); }

    // A run of atoms and groups up to the end, or (inside a group) up to its "," or "}".
    std::optional<std::vector<GlobSeq>> sequence(bool inTerms) {
        std::vector<GlobSeq> seqs{GlobSeq{}};
        while (!atEnd()) {
            const char32_t c = p_[pos_];
            if (inTerms && (c == U',' || c == U'}')) break;
            ++pos_;
            std::optional<GlobAtom> atom;
            if (c == U'{') {
                auto alts = terms();
                if (!alts || !product(seqs, *alts)) return std::nullopt;
                continue;
            }
            if (c == U'*') {
                atom = GlobAtom{GlobAtom::Star, false, {}};
            } else if (c == U'?') {
                atom = GlobAtom{GlobAtom::AnyOne, false, {}};
            } else if (c == U'[') {
                atom = charClass();
            } else if (c == U'\\') {
                if (atEnd()) return std::nullopt;  // a trailing backslash
                atom = GlobAtom{GlobAtom::Literal, false, std::u32string(1, p_[pos_++])};
            } else {
                atom = GlobAtom{GlobAtom::Literal, false, std::u32string(1, c)};
            }
            if (!atom) return std::nullopt;
            for (auto& s : seqs) s.push_back(*atom);
        }
        return seqs;
    }

    // The alternatives of a "{...}" group, its "{" consumed.
    std::optional<std::vector<GlobSeq>> terms() {
        std::vector<GlobSeq> all;
        for (;;) {
            auto alt = sequence(true);
            if (!alt) return std::nullopt;
            all.insert(all.end(), alt->begin(), alt->end());
            if (all.size() > kMaxGlobExpansions || atEnd()) return std::nullopt;
            if (p_[pos_++] == U'}') return all;
        }
    }

    bool product(std::vector<GlobSeq>& seqs, const std::vector<GlobSeq>& alts) const {
        if (seqs.size() * alts.size() > kMaxGlobExpansions) return false;
        std::vector<GlobSeq> out;
        for (const auto& s : seqs)
            for (const auto& a : alts) {
                out.push_back(s);
                out.back().insert(out.back().end(), a.begin(), a.end());
            }
        seqs = std::move(out);
        return true;
    }

    // "[abc]", "[a-z]", "[!...]", its "[" consumed; as gobwas's lexer: one range or one set.
    std::optional<GlobAtom> charClass() {
        GlobAtom atom{GlobAtom::Set, false, {}};
        if (!atEnd() && p_[pos_] == U'!') {
            atom.negated = true;
            ++pos_;
        }
        if (pos_ + 1 < p_.size() && p_[pos_ + 1] == U'-') {
            if (pos_ + 3 >= p_.size() || p_[pos_ + 3] != U']') return std::nullopt;
            atom.kind = GlobAtom::Range;
            atom.chars = {p_[pos_], p_[pos_ + 2]};
            pos_ += 4;
            return atom;
        }
        while (!atEnd()) {
            char32_t c = p_[pos_++];
            if (c == U']') return atom;
            if (c == U'\\') {
                if (atEnd()) return std::nullopt;
                c = p_[pos_++];
            }
            atom.chars.push_back(c);
        }
        return std::nullopt;  // unclosed
    }
};

bool matchesOne(const GlobAtom& a, char32_t c) {
    switch (a.kind) {
        case GlobAtom::AnyOne:
            return true;
        case GlobAtom::Literal:
            return a.chars[0] == c;
        case GlobAtom::Range:
            return (a.chars[0] <= c && c <= a.chars[1]) != a.negated;
        case GlobAtom::Set:
            return (a.chars.find(c) != std::u32string::npos) != a.negated;
        case GlobAtom::Star:
            break;
    }
    return false;
}

// Every atom but a star matches exactly one character, so backtracking to the latest star
// alone is complete.
bool matchSequence(const GlobSeq& p, const std::u32string& t) {
    const std::size_t none = std::string::npos;
    std::size_t pi = 0, ti = 0, starP = none, starT = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi].kind == GlobAtom::Star) {
            starP = ++pi;
            starT = ti;
        } else if (pi < p.size() && matchesOne(p[pi], t[ti])) {
            ++pi;
            ++ti;
        } else if (starP == none) {
            return false;
        } else {
            pi = starP;
            ti = ++starT;
        }
    }
    while (pi < p.size() && p[pi].kind == GlobAtom::Star) ++pi;
    return pi == p.size();
}

}  // namespace

bool globMatch(const std::string& pattern, const std::string& text) {
    std::u32string p, t;
    if (!decodeUtf8(pattern, p, true)) return false;
    decodeUtf8(text, t, false);
    auto seqs = GlobParser(std::move(p)).parse();
    if (!seqs) return false;
    return std::any_of(seqs->begin(), seqs->end(),
                       [&](const GlobSeq& s) { return matchSequence(s, t); });
}

namespace {
std::string located(const std::string& file, int line, const std::string& message) {
    // Appended piecewise: GCC 12 reports a false -Wrestrict on chained operator+ here.
    std::string out = file;
    if (line > 0) out.append(":").append(std::to_string(line));
    out.append(": ").append(message);
    return out;
}
}  // namespace

RenderError::RenderError(std::string file, int line, const std::string& message)
    : std::runtime_error(located(file, line, message)), file_(std::move(file)), line_(line) {}

bool isRelevant(const std::string& path, const Options& options) {
    std::vector<std::string> rel;
    return relativeTo(basePath(options), path, rel) && relevantRel(rel, options);
}

std::vector<Object> render(const std::vector<SourceFile>& files, const Options& options) {
    std::string base = basePath(options);
    std::vector<std::pair<std::vector<std::string>, const SourceFile*>> selected;
    for (const auto& f : files) {
        std::vector<std::string> rel;
        if (relativeTo(base, f.path, rel) && relevantRel(rel, options))
            selected.emplace_back(components(f.path), &f);
    }
    std::sort(selected.begin(), selected.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });

    // Refuse other source types before parsing anything: their files are not plain manifests.
    for (const auto& [parts, f] : selected) {
        if (isKustomization(parts.back()))
            throw RenderError(f->path, 0,
                              "a kustomization file in a directory source: without a directory "
                              "block this path is built with Kustomize (or exclude the file with "
                              "directory.exclude)");
        if (parts.back() == "Chart.yaml")
            throw RenderError(f->path, 0,
                              "Chart.yaml in a directory source: without a directory block this "
                              "path is rendered with Helm (or exclude the file with "
                              "directory.exclude)");
    }

    std::vector<Object> out;
    YamlBudget stream;  // an Application's manifests together
    for (const auto& [parts, f] : selected) {
        std::string content = f->content;
        if (content.compare(0, 3, "\xEF\xBB\xBF") == 0) content.erase(0, 3);  // UTF-8 BOM
        if (lowerExt(parts.back()) == ".json") {
            renderJson(*f, content, out);
        } else {
            renderYaml(*f, content, out, stream);
        }
    }
    return out;
}

std::vector<Object> renderStream(const std::string& text, const std::string& fileName) {
    std::vector<Object> out;
    std::string content = text;
    if (content.compare(0, 3, "\xEF\xBB\xBF") == 0) content.erase(0, 3);
    renderYaml(SourceFile{fileName, {}}, content, out);
    return out;
}

std::vector<Object> renderRevision(git::GitSource& source, const git::Repository& repo,
                                   const std::string& sha, const Options& options) {
    std::vector<std::string> paths;
    std::uint64_t total = 0;
    for (const auto& f : source.listFiles(repo, sha, options.path, options.recurse))
        if (isRelevant(f.path, options)) {
            paths.push_back(f.path);
            total += f.size;
            if (total > options.maxBytes)
                throw RenderError(f.path, 0,
                                  "the manifests of the source path add up to more than " +
                                      std::to_string(options.maxBytes >> 20) +
                                      " MiB; refused (the API server takes at most 1.5 MiB "
                                      "per object)");
        }
    std::vector<std::string> contents = source.readFiles(repo, sha, paths);
    std::vector<SourceFile> files;
    files.reserve(paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i)
        files.push_back(SourceFile{std::move(paths[i]), std::move(contents[i])});
    return render(files, options);
}

}  // namespace sluice::render
