// docs/crds.md against the CRD schemas in crds/: every field a CRD accepts from its user is in the
// field tables of that kind's section, and every field those tables name is in the schema.
//
// What counts as documented (the rule docs/crds.md is written to):
// - A kind's section is the part of docs/crds.md under the level-2 heading that is the kind's
//   name (`## Canary`), up to the next level-2 heading.
// - A field heading is a level-3 or deeper heading made of backticked field paths, e.g.
//   "### `spec.analysis.metrics[]`" or "### `spec.source`, `spec.sources[]`". It sets the base
//   path(s) of the tables below it until the next heading. Other headings (`#### Helm`) set no
//   base, so their tables are not checked.
// - A field table is a Markdown table whose header row starts with the cell "field". The first
//   cell of each row names one or more fields in backticks, relative to the base
//   (`targetRef.name`, or `apex.labels`, `apex.annotations`); a row naming a.b also documents a.
// - A row documents sub-fields it does not give rows of their own by listing them in braces
//   inside backticks in its "type" cell: `{apiVersion, kind: Ingress, name}` names three fields;
//   a value after a colon is a nested list when it is in braces (`{backoff: {duration, factor}}`),
//   otherwise an example value. `{{ ... }}` (query placeholders) is not a list of fields.
// - "[]" (items of a list) is ignored on both sides: a field of a list's items is named like a
//   field of an object.
// Checked parts of the schema: every property under the top-level properties other than
// apiVersion, kind, metadata and status (spec, and an Application's operation). Below a field
// that keeps unknown fields (x-kubernetes-preserve-unknown-fields) or is a map
// (additionalProperties), documented sub-fields cannot be checked against the schema and are
// accepted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sluice/appengine/project.h"
#include "sluice/appengine/spec.h"
#include "sluice/canaryengine/spec.h"
#include "sluice/util/yaml_json.h"
#include "testutil/testutil.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SchemaFields {
    std::set<std::string> fields;  // every checked property path, "[]" dropped
    std::set<std::string> open;    // paths whose sub-fields the schema does not list
};

void walkSchema(const json& node, const std::string& path, SchemaFields& out) {
    if (!node.is_object()) return;
    if (node.value("x-kubernetes-preserve-unknown-fields", false) ||
        node.contains("additionalProperties"))
        out.open.insert(path);
    if (auto props = node.find("properties"); props != node.end() && props->is_object()) {
        for (const auto& [name, child] : props->items()) {
            const std::string childPath = path.empty() ? name : path + "." + name;
            out.fields.insert(childPath);
            walkSchema(child, childPath, out);
        }
    }
    if (auto items = node.find("items"); items != node.end()) walkSchema(*items, path, out);
    for (const char* combinator : {"oneOf", "anyOf", "allOf"})
        if (auto subs = node.find(combinator); subs != node.end() && subs->is_array())
            for (const json& sub : *subs) walkSchema(sub, path, out);
}

const std::set<std::string> kUnchecked = {"apiVersion", "kind", "metadata", "status"};

// kind -> the fields of its served versions' openAPIV3Schema under the checked roots.
std::map<std::string, SchemaFields> schemaFields() {
    std::map<std::string, SchemaFields> out;
    for (const auto& entry : fs::directory_iterator(sourcePath("crds"))) {
        for (const json& crd : yamlDocumentsToJson(readFile(entry.path().string()))) {
            const std::string kind = crd["spec"]["names"]["kind"];
            for (const json& version : crd["spec"]["versions"]) {
                const json& root = version["schema"]["openAPIV3Schema"];
                for (const auto& [name, child] : root["properties"].items()) {
                    if (kUnchecked.count(name)) continue;
                    SchemaFields part;
                    walkSchema(child, name, part);
                    out[kind].fields.insert(part.fields.begin(), part.fields.end());
                    out[kind].open.insert(part.open.begin(), part.open.end());
                    out[kind].fields.insert(name);  // the root, documented by its heading
                }
            }
        }
    }
    return out;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string withoutBrackets(std::string path) {
    for (std::size_t at; (at = path.find("[]")) != std::string::npos;) path.erase(at, 2);
    return path;
}

bool isFieldPath(const std::string& s) {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '[' || c == ']';
    });
}

// The contents of the `...` spans of a line.
std::vector<std::string> backticked(const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t open = text.find('`'); open != std::string::npos;) {
        const std::size_t close = text.find('`', open + 1);
        if (close == std::string::npos) break;
        out.push_back(text.substr(open + 1, close - open - 1));
        open = text.find('`', close + 1);
    }
    return out;
}

// The cells of a table row, split on the '|' that are not escaped.
std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::string cell;
    for (std::size_t i = 0; i < row.size(); ++i) {
        if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
            cell += "\\|";
            ++i;
        } else if (row[i] == '|') {
            out.push_back(trim(cell));
            cell.clear();
        } else {
            cell += row[i];
        }
    }
    if (!trim(cell).empty()) out.push_back(trim(cell));
    if (!out.empty() && out.front().empty()) out.erase(out.begin());  // before the first '|'
    return out;
}

// The field names of a brace list starting at text[at] == '{', nested ones as "a.b"; `at` ends
// after the closing brace.
void braceFields(const std::string& text, std::size_t& at, const std::string& prefix,
                 std::vector<std::string>& out) {
    ++at;  // '{'
    while (at < text.size()) {
        while (at < text.size() && (text[at] == ' ' || text[at] == ',')) ++at;
        if (at >= text.size()) return;
        if (text[at] == '}') {
            ++at;
            return;
        }
        std::size_t start = at;
        while (at < text.size() && (std::isalnum(static_cast<unsigned char>(text[at])))) ++at;
        const std::string name = text.substr(start, at - start);
        if (!name.empty() && std::isalpha(static_cast<unsigned char>(name[0])))
            out.push_back(prefix + name);
        while (at < text.size() && text[at] == ' ') ++at;
        if (at < text.size() && text[at] == ':') {
            ++at;
            while (at < text.size() && text[at] == ' ') ++at;
            if (at < text.size() && text[at] == '{') {
                braceFields(text, at, prefix + name + ".", out);
                continue;
            }
        }
        // An example value, or text that is not a name: skipped up to the next item.
        int depth = 0;
        while (at < text.size()) {
            if (text[at] == '{') ++depth;
            if (text[at] == '}' && depth-- == 0) break;
            if (text[at] == ',' && depth == 0) break;
            ++at;
        }
    }
}

// The sub-fields a type cell lists in braces.
std::vector<std::string> listedSubFields(const std::string& typeCell) {
    std::vector<std::string> out;
    for (const std::string& span : backticked(typeCell)) {
        if (span.find("{{") != std::string::npos) continue;
        for (std::size_t at = span.find('{'); at != std::string::npos; at = span.find('{', at))
            braceFields(span, at, "", out);
    }
    return out;
}

struct DocumentedField {
    std::string path;  // full path, "[]" dropped
    int line;
    bool withoutEffect;  // the row says "not implemented" or "no effect"
};

// A row of a field the controllers accept and ignore says so in these words.
bool saysWithoutEffect(const std::string& row) {
    std::string lower = row;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return lower.find("not implemented") != std::string::npos ||
           lower.find("no effect") != std::string::npos;
}

// kind -> the fields its section's field tables name.
std::map<std::string, std::vector<DocumentedField>> documentedFields(
    const std::string& markdown, const std::set<std::string>& kinds,
    const std::set<std::string>& roots) {
    std::map<std::string, std::vector<DocumentedField>> out;
    std::string kind;
    std::vector<std::string> bases;
    bool inFieldTable = false, atTableStart = true;
    std::size_t typeColumn = 0;  // 0: none (the first column names the field)
    std::istringstream in(markdown);
    std::string line;
    bool inCode = false;
    for (int number = 1; std::getline(in, line); ++number) {
        if (line.rfind("```", 0) == 0) inCode = !inCode;
        if (inCode || line.rfind("```", 0) == 0) continue;
        if (line.rfind("## ", 0) == 0) {
            const std::string title = trim(line.substr(3));
            kind = kinds.count(title) ? title : "";
            bases.clear();
            continue;
        }
        if (line.rfind("###", 0) == 0) {
            bases.clear();
            const std::string title = trim(line.substr(line.find(' ')));
            const std::vector<std::string> paths = backticked(title);
            // Made of backticked paths only (joined by commas or "and"), each under a checked
            // root (spec, operation).
            std::string rest = title;
            for (const std::string& p : paths) rest.erase(rest.find("`" + p + "`"), p.size() + 2);
            std::replace(rest.begin(), rest.end(), ',', ' ');
            std::istringstream words(rest);
            bool onlyPaths = !paths.empty();
            for (std::string word; words >> word;) onlyPaths = onlyPaths && word == "and";
            for (const std::string& p : paths) {
                const std::string root = p.substr(0, p.find_first_of(".["));
                onlyPaths = onlyPaths && isFieldPath(p) && roots.count(root);
            }
            if (onlyPaths)
                for (const std::string& p : paths) bases.push_back(withoutBrackets(p));
            continue;
        }
        if (line.rfind("|", 0) != 0) {
            atTableStart = true;
            inFieldTable = false;
            continue;
        }
        const std::vector<std::string> row = cells(line);
        if (atTableStart) {  // the header row
            atTableStart = false;
            inFieldTable = !row.empty() && row.front() == "field";
            const auto type = std::find(row.begin(), row.end(), "type");
            typeColumn = type == row.end() ? 0 : static_cast<std::size_t>(type - row.begin());
            continue;
        }
        if (!inFieldTable || kind.empty() || bases.empty()) continue;
        if (!row.empty() && row.front().find_first_not_of("-: ") == std::string::npos) continue;
        const std::vector<std::string> names = backticked(row.empty() ? "" : row.front());
        EXPECT_FALSE(names.empty()) << "docs/crds.md:" << number << ": no `field` in " << line;
        const std::vector<std::string> subFields = typeColumn > 0 && typeColumn < row.size()
                                                       ? listedSubFields(row[typeColumn])
                                                       : std::vector<std::string>();
        const bool withoutEffect = saysWithoutEffect(line.substr(line.find('|', 1)));
        for (const std::string& base : bases) {
            for (const std::string& name : names) {
                EXPECT_TRUE(isFieldPath(name))
                    << "docs/crds.md:" << number << ": `" << name << "` is not a field name";
                const std::string path = base + "." + withoutBrackets(name);
                out[kind].push_back({path, number, withoutEffect});
                for (const std::string& sub : subFields)
                    out[kind].push_back({path + "." + sub, number, false});
            }
        }
    }
    return out;
}

bool under(const std::string& path, const std::string& ancestor) {
    return path.size() > ancestor.size() && path.compare(0, ancestor.size(), ancestor) == 0 &&
           path[ancestor.size()] == '.';
}

class CrdDocsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        schemas_ = schemaFields();
        ASSERT_EQ(schemas_.size(), 5u)
            << "Application, AppProject, Canary, MetricTemplate, AlertProvider";
        std::set<std::string> kinds, roots;
        for (const auto& [kind, schema] : schemas_) {
            kinds.insert(kind);
            for (const std::string& field : schema.fields)
                if (field.find('.') == std::string::npos) roots.insert(field);
        }
        docs_ = documentedFields(readFile(sourcePath("docs/crds.md")), kinds, roots);
    }
    std::map<std::string, SchemaFields> schemas_;
    std::map<std::string, std::vector<DocumentedField>> docs_;
};

TEST_F(CrdDocsTest, EveryFieldTheSchemasAcceptIsDocumented) {
    for (const auto& [kind, schema] : schemas_) {
        const auto& documented = docs_[kind];
        std::vector<std::string> missing;
        for (const std::string& field : schema.fields) {
            if (field.find('.') == std::string::npos) continue;  // a root: its heading
            const bool found = std::any_of(
                documented.begin(), documented.end(),
                [&](const DocumentedField& d) { return d.path == field || under(d.path, field); });
            if (!found) missing.push_back(field);
        }
        EXPECT_TRUE(missing.empty())
            << kind << " fields of crds/ without a row (or a {...} mention) in docs/crds.md:\n  "
            << [&] {
                   std::string s;
                   for (const auto& m : missing) s += m + "\n  ";
                   return s;
               }();
    }
}

TEST_F(CrdDocsTest, EveryDocumentedFieldIsInTheSchema) {
    for (const auto& [kind, documented] : docs_) {
        const SchemaFields& schema = schemas_.at(kind);
        std::vector<std::string> unknown;
        for (const DocumentedField& d : documented) {
            if (schema.fields.count(d.path)) continue;
            const bool belowOpen =
                std::any_of(schema.open.begin(), schema.open.end(),
                            [&](const std::string& open) { return under(d.path, open); });
            if (!belowOpen)
                unknown.push_back("docs/crds.md:" + std::to_string(d.line) + ": " + d.path);
        }
        EXPECT_TRUE(unknown.empty())
            << kind << " fields in docs/crds.md that crds/ lacks:\n  " << [&] {
                   std::string s;
                   for (const auto& u : unknown) s += u + "\n  ";
                   return s;
               }();
    }
}

// The fields docs/crds.md says have no effect are exactly those the code says it ignores (and
// reports in a FieldsNotImplemented Event): neither list can drift from the other.
TEST_F(CrdDocsTest, RowsWithoutEffectAreTheFieldsTheControllersReport) {
    const std::map<std::string, std::vector<std::string>> code = {
        {"Application", appengine::fieldsWithoutEffect()},
        {"Canary", canaryengine::fieldsWithoutEffect()},
        {"MetricTemplate", {}},
        {"AlertProvider", {}},
        {"AppProject", appengine::projectFieldsWithoutEffect()}};
    for (const auto& [kind, fields] : code) {
        std::set<std::string> documented;
        for (const DocumentedField& d : docs_[kind])
            if (d.withoutEffect) documented.insert(d.path);
        const std::set<std::string> reported(fields.begin(), fields.end());
        std::vector<std::string> onlyDocs, onlyCode;
        std::set_difference(documented.begin(), documented.end(), reported.begin(), reported.end(),
                            std::back_inserter(onlyDocs));
        std::set_difference(reported.begin(), reported.end(), documented.begin(), documented.end(),
                            std::back_inserter(onlyCode));
        EXPECT_TRUE(onlyDocs.empty())
            << kind << ": docs/crds.md says these have no effect, "
            << "but the code does not report them: " << ::testing::PrintToString(onlyDocs);
        EXPECT_TRUE(onlyCode.empty())
            << kind << ": the code reports these as not implemented, "
            << "but docs/crds.md does not say so: " << ::testing::PrintToString(onlyCode);
    }
}

// The rule finds the tables at all: a few fields of each kind, named in different ways.
TEST_F(CrdDocsTest, TheTablesAreRead) {
    auto has = [&](const std::string& kind, const std::string& path) {
        const auto& d = docs_[kind];
        return std::any_of(d.begin(), d.end(),
                           [&](const DocumentedField& f) { return f.path == path; });
    };
    EXPECT_TRUE(has("Application", "spec.syncPolicy.retry.backoff.factor"));  // a row
    EXPECT_TRUE(has("Application", "spec.sources.directory.recurse"));        // second base
    EXPECT_TRUE(has("Application", "operation.sync.resources.namespace"));    // {...}
    EXPECT_TRUE(has("Canary", "spec.analysis.metrics.thresholdRange.min"));   // list items
    EXPECT_TRUE(has("Canary", "spec.service.apex.annotations"));              // two per row
    EXPECT_TRUE(has("Canary", "spec.autoscalerRef.primaryScalerReplicas.maxReplicas"));  // nested
    EXPECT_TRUE(has("MetricTemplate", "spec.provider.secretRef.name"));
    EXPECT_TRUE(has("AlertProvider", "spec.secretRef.name"));
    EXPECT_TRUE(has("AppProject", "spec.syncWindows.manualSync"));
    EXPECT_TRUE(has("Canary", "spec.analysis.alerts.providerRef.namespace"));
    EXPECT_FALSE(has("Canary", "spec.analysis.metrics.query.ingress"));  // {{ ingress }}
}

}  // namespace
}  // namespace sluice::testing
