#include "sluice/render/render.h"

#include <algorithm>
#include <cctype>

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

bool relevantRel(const std::vector<std::string>& rel, bool recurse) {
    if (!recurse && rel.size() > 1) return false;
    for (const auto& c : rel)
        if (c[0] == '.') return false;  // hidden files and directories
    const std::string& name = rel.back();
    return isManifest(name) || isKustomization(name) || name == "Chart.yaml";
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
    auto name = md->find("name");
    if (name == md->end() || !name->is_string() || name->get_ref<const std::string&>().empty())
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

void renderYaml(const SourceFile& f, const std::string& content, std::vector<Object>& out) {
    int index = 0;
    for (auto& d : splitDocuments(content)) {
        json doc;
        try {
            doc = yamlToJson(d.text);
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
    return relativeTo(basePath(options), path, rel) && relevantRel(rel, options.recurse);
}

std::vector<Object> render(const std::vector<SourceFile>& files, const Options& options) {
    std::string base = basePath(options);
    std::vector<std::pair<std::vector<std::string>, const SourceFile*>> selected;
    for (const auto& f : files) {
        std::vector<std::string> rel;
        if (relativeTo(base, f.path, rel) && relevantRel(rel, options.recurse))
            selected.emplace_back(components(f.path), &f);
    }
    std::sort(selected.begin(), selected.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });

    // Refuse other source types before parsing anything: their files are not plain manifests.
    for (const auto& [parts, f] : selected) {
        if (isKustomization(parts.back()))
            throw RenderError(f->path, 0,
                              "Kustomize sources are not supported yet (found a kustomization "
                              "file in the source path)");
        if (parts.back() == "Chart.yaml")
            throw RenderError(f->path, 0,
                              "Helm charts are not supported yet (found Chart.yaml in the source "
                              "path)");
    }

    std::vector<Object> out;
    for (const auto& [parts, f] : selected) {
        std::string content = f->content;
        if (content.compare(0, 3, "\xEF\xBB\xBF") == 0) content.erase(0, 3);  // UTF-8 BOM
        if (lowerExt(parts.back()) == ".json") {
            renderJson(*f, content, out);
        } else {
            renderYaml(*f, content, out);
        }
    }
    return out;
}

std::vector<Object> renderRevision(git::GitSource& source, const git::Repository& repo,
                                   const std::string& sha, const Options& options) {
    std::vector<std::string> paths;
    for (const auto& f : source.listFiles(repo, sha, options.path, options.recurse))
        if (isRelevant(f.path, options)) paths.push_back(f.path);
    std::vector<std::string> contents = source.readFiles(repo, sha, paths);
    std::vector<SourceFile> files;
    files.reserve(paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i)
        files.push_back(SourceFile{std::move(paths[i]), std::move(contents[i])});
    return render(files, options);
}

}  // namespace sluice::render
