#include "sluice/util/yaml_json.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>

namespace sluice {
namespace {

using nlohmann::json;

bool isOneOf(const std::string& s, std::initializer_list<const char*> options) {
    for (const char* o : options)
        if (s == o) return true;
    return false;
}

// Resolves a plain (unquoted) scalar the way go-yaml v2 does for interface{} targets.
json resolvePlainScalar(const std::string& s) {
    if (s.empty() || isOneOf(s, {"~", "null", "Null", "NULL"})) return nullptr;
    if (isOneOf(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}))
        return true;
    if (isOneOf(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}))
        return false;
    auto stripUnderscores = [](std::string v) {
        v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
        return v;
    };
    size_t signLen = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    std::string_view body(s);
    body.remove_prefix(signLen);
    auto allOf = [](std::string_view v, auto pred) {
        return !v.empty() && std::all_of(v.begin(), v.end(), pred);
    };
    auto isDigitOrUnderscore = [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '_';
    };
    try {
        // Decimal integer: 0 or a non-zero digit followed by digits/underscores.
        if (allOf(body, isDigitOrUnderscore) && std::isdigit(static_cast<unsigned char>(body[0])) &&
            (body[0] != '0' || body.size() == 1)) {
            std::string v = stripUnderscores(s);
            if (v[0] == '-') return static_cast<int64_t>(std::stoll(v));
            uint64_t u = std::stoull(v[0] == '+' ? v.substr(1) : v);
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return static_cast<int64_t>(u);
            return u;
        }
        // Hexadecimal: 0x...
        if (body.size() > 2 && body[0] == '0' && body[1] == 'x' &&
            allOf(body.substr(2), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) || c == '_';
            })) {
            int64_t n = static_cast<int64_t>(
                std::stoull(stripUnderscores(std::string(body.substr(2))), nullptr, 16));
            return s[0] == '-' ? -n : n;
        }
        // Octal: 0o... or a leading 0 followed by octal digits (YAML 1.1).
        std::string_view oct = body.substr(0, 2) == "0o" ? body.substr(2) : body;
        if (body.size() > 1 && body[0] == '0' &&
            allOf(oct, [](char c) { return (c >= '0' && c <= '7') || c == '_'; })) {
            int64_t n =
                static_cast<int64_t>(std::stoull(stripUnderscores(std::string(oct)), nullptr, 8));
            return s[0] == '-' ? -n : n;
        }
        // Float: digits with an optional fraction and exponent, or a leading-dot fraction.
        {
            size_t i = 0;
            size_t intDigits = 0, fracDigits = 0;
            while (i < body.size() && isDigitOrUnderscore(body[i])) ++i, ++intDigits;
            bool dot = i < body.size() && body[i] == '.';
            if (dot) {
                ++i;
                while (i < body.size() && isDigitOrUnderscore(body[i])) ++i, ++fracDigits;
            }
            bool mantissaOk =
                (intDigits > 0 && std::isdigit(static_cast<unsigned char>(body[0]))) ||
                (intDigits == 0 && dot && fracDigits > 0);
            bool expOk = true;
            if (mantissaOk && i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
                ++i;
                if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
                size_t expStart = i;
                while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i;
                expOk = i > expStart;
            }
            if (mantissaOk && expOk && i == body.size()) return std::stod(stripUnderscores(s));
        }
    } catch (const std::out_of_range&) {
        return s;  // too large for a number: keep the text
    } catch (const std::invalid_argument&) {
        return s;  // underscores and no digit ("0x_", "0o_"): not a number, the text
    }
    if (isOneOf(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}))
        return std::numeric_limits<double>::infinity();
    if (isOneOf(s, {"-.inf", "-.Inf", "-.INF"})) return -std::numeric_limits<double>::infinity();
    if (isOneOf(s, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
    return s;
}

bool isValidUtf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n = 0;  // continuation bytes
        if (c >= 0x80) {
            if ((c >> 5) == 0x6) {
                n = 1;
            } else if ((c >> 4) == 0xE) {
                n = 2;
            } else if ((c >> 3) == 0x1E) {
                n = 3;
            } else {
                return false;
            }
        }
        if (n > s.size() - i - 1) return false;
        uint32_t cp = n == 0 ? c : (c & (0x3Fu >> n));
        for (size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        // Overlong forms and surrogates are refused, as JSON parsers refuse them.
        static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

json scalarToJson(const std::string& tag, const std::string& value) {
    // "!" marks a quoted scalar: it stays a string, as an explicit !!str does.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return value;
    return resolvePlainScalar(value);
}

int lineOf(const YAML::Mark& mark) {
    return mark.is_null() ? 0 : mark.line + 1;
}

int lineOf(const YAML::Exception& e) {
    return lineOf(e.mark);
}

// Measured on nlohmann::json: a list element takes 48 to 64 bytes, a map entry (key and value,
// two nodes here) 96 to 124.
constexpr std::size_t kNodeBytes = 64;

std::size_t times(std::size_t n, std::size_t factor) {
    if (factor != 0 && n > std::numeric_limits<std::size_t>::max() / factor)
        return std::numeric_limits<std::size_t>::max();
    return n * factor;
}

// Counts what a document produces against its limits and its stream's, throwing as soon as one
// is exceeded: alias expansions are counted before they are copied.
class Meter {
  public:
    explicit Meter(YamlBudget& stream) : stream_(stream) {}

    void startDocument(int line) {
        doc_ = {};
        line_ = line;
    }
    // A node written out in the text.
    void own(std::size_t bytes) { add(1, bytes, 0, 0); }
    // An alias standing for `nodes` nodes taking `bytes`.
    void alias(std::size_t nodes, std::size_t bytes) { add(nodes, bytes, nodes, bytes); }
    // The copy kept of an anchored node, for its aliases.
    void anchorCopy(std::size_t bytes) { add(0, bytes, 0, bytes); }
    void depth(std::size_t levels) const {
        if (levels > limits().maxDepth)
            fail("YAML nesting deeper than " + std::to_string(limits().maxDepth) + " levels");
    }

  private:
    const YamlLimits& limits() const { return stream_.limits; }

    [[noreturn]] void fail(const std::string& message) const { throw YamlError(message, line_); }

    void add(std::size_t nodes, std::size_t bytes, std::size_t aliasNodes, std::size_t aliasBytes) {
        for (YamlTotals* t : {&doc_, &stream_.spent}) {
            t->nodes += nodes;
            t->bytes += bytes;
            t->aliasNodes += aliasNodes;
            t->aliasBytes += aliasBytes;
        }
        check(doc_, limits().maxNodes, limits().maxBytes, "");
        check(stream_.spent, limits().maxStreamNodes, limits().maxStreamBytes,
              " over the stream's documents");
    }

    void check(const YamlTotals& t, std::size_t maxNodes, std::size_t maxBytes,
               const std::string& scope) const {
        const YamlLimits& l = limits();
        // What the text itself produced sets how much aliases may add to it.
        std::size_t aliasNodeCap =
            std::max(l.aliasNodes, times(t.nodes - t.aliasNodes, l.aliasRatio));
        std::size_t aliasByteCap =
            std::max(l.aliasBytes, times(t.bytes - t.aliasBytes, l.aliasRatio));
        if (t.aliasNodes > aliasNodeCap)
            fail("YAML alias expansion exceeds " + std::to_string(aliasNodeCap) + " nodes" + scope +
                 " (an alias bomb?)");
        if (t.aliasBytes > aliasByteCap)
            fail("YAML alias expansion exceeds " + std::to_string(aliasByteCap) + " bytes" + scope +
                 " (an alias bomb?)");
        if (t.nodes > maxNodes) fail("YAML exceeds " + std::to_string(maxNodes) + " nodes" + scope);
        if (t.bytes > maxBytes)
            fail("YAML exceeds an estimated " + std::to_string(maxBytes) + " bytes" + scope);
    }

    YamlBudget& stream_;
    YamlTotals doc_;
    int line_ = 0;
};

struct Size {
    std::size_t nodes = 0;
    std::size_t bytes = 0;
    std::size_t height = 0;  // levels of lists and maps; 0 for a scalar
};

// A finished node on its way into its parent.
struct Built {
    json value;
    Size size;
    std::optional<std::string> text;  // a scalar's text, kept for map keys and the root
    int line = 0;
};

// A list or map being filled.
struct Open {
    json value;
    Size size;
    YAML::anchor_t anchor;
    int line;
    std::optional<std::string> key;  // a map's key waiting for its value
    int keyLine = 0;
};

struct Anchor {
    std::string name;
    bool done = false;  // an alias inside its own anchored node would make a cycle
    Built node;
};

// Builds JSON straight from the parser's events rather than from YAML::Node: the node graph
// shares aliased nodes, so walking it copies them without knowing, and a node that contains
// its own alias (`&a [*a]`) makes the walk recurse until the stack overflows.
class JsonBuilder : public YAML::EventHandler {
  public:
    explicit JsonBuilder(YamlBudget& stream) : meter_(stream) {}

    // Whether the document held nothing, as opposed to, say, an empty tagged scalar.
    bool empty() const { return !root_ || (root_->value.is_null() && !root_->text); }
    json takeRoot() { return root_ ? std::move(root_->value) : json(); }

    void OnDocumentStart(const YAML::Mark& mark) override {
        meter_.startDocument(lineOf(mark));
        stack_.clear();
        anchors_.clear();
        root_.reset();
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        leaf(mark, anchor, nullptr, nullptr);
    }
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        // JSON (and so the API server) takes UTF-8 only; refused here, not when the object is
        // serialised later (found by fuzzing: the serialiser throws outside YamlError).
        if (!isValidUtf8(value)) throw YamlError("invalid UTF-8 in a string", lineOf(mark));
        leaf(mark, anchor, scalarToJson(tag, value), &value);
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override;
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(mark, anchor, json::array());
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(mark, anchor, json::object());
    }
    void OnMapEnd() override { close(); }
    void OnAnchor(const YAML::Mark&, const std::string& name) override { anchorName_ = name; }

  private:
    bool atKey() const {
        return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().key;
    }
    void defineAnchor(YAML::anchor_t anchor);
    void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, json value, const std::string* text);
    void open(const YAML::Mark& mark, YAML::anchor_t anchor, json value);
    void close();
    void finish(Built node, YAML::anchor_t anchor);
    void addToMap(Open& map, Built node);

    Meter meter_;
    std::vector<Open> stack_;
    std::vector<Anchor> anchors_;  // by the parser's anchor number, which starts at 1
    std::string anchorName_;
    std::optional<Built> root_;
};

void JsonBuilder::defineAnchor(YAML::anchor_t anchor) {
    if (anchor == YAML::NullAnchor) return;
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
    anchors_[anchor] = Anchor{anchorName_, false, {}};
}

void JsonBuilder::leaf(const YAML::Mark& mark, YAML::anchor_t anchor, json value,
                       const std::string* text) {
    std::size_t bytes = kNodeBytes + (text ? text->size() : 0);
    meter_.own(bytes);
    defineAnchor(anchor);
    Built node{std::move(value), Size{1, bytes, 0}, std::nullopt, lineOf(mark)};
    // Keys use the text; the root keeps it to tell a tagged empty scalar from an empty document.
    if (text && (atKey() || anchor != YAML::NullAnchor || stack_.empty())) node.text = *text;
    finish(std::move(node), anchor);
}

void JsonBuilder::open(const YAML::Mark& mark, YAML::anchor_t anchor, json value) {
    meter_.depth(stack_.size() + 1);
    meter_.own(kNodeBytes);
    defineAnchor(anchor);
    stack_.push_back(Open{std::move(value), Size{1, kNodeBytes, 1}, anchor, lineOf(mark), {}, 0});
}

void JsonBuilder::close() {
    Open done = std::move(stack_.back());
    stack_.pop_back();
    finish(Built{std::move(done.value), done.size, std::nullopt, done.line}, done.anchor);
}

void JsonBuilder::OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) {
    const Anchor& a = anchors_.at(anchor);
    if (!a.done)
        throw YamlError("YAML alias *" + a.name + " is inside the node it refers to", lineOf(mark));
    meter_.depth(stack_.size() + a.node.size.height);
    meter_.alias(a.node.size.nodes, a.node.size.bytes);  // before the copy is made
    Built copy = a.node;
    copy.line = lineOf(mark);
    finish(std::move(copy), YAML::NullAnchor);
}

void JsonBuilder::finish(Built node, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) {
        meter_.anchorCopy(node.size.bytes);
        anchors_[anchor].node = node;
        anchors_[anchor].done = true;
    }
    if (stack_.empty()) {
        root_ = std::move(node);
        return;
    }
    Open& parent = stack_.back();
    parent.size.nodes += node.size.nodes;
    parent.size.bytes += node.size.bytes;
    parent.size.height = std::max(parent.size.height, node.size.height + 1);
    if (parent.value.is_array()) {
        parent.value.push_back(std::move(node.value));
    } else {
        addToMap(parent, std::move(node));
    }
}

void JsonBuilder::addToMap(Open& map, Built node) {
    if (!map.key) {
        // Keys keep their text: a key spelled "on" or "n" is a field name, not a bool.
        map.key = node.text ? std::move(*node.text) : node.value.dump();
        map.keyLine = node.line;
        return;
    }
    auto& obj = map.value.get_ref<json::object_t&>();
    if (!obj.try_emplace(*map.key, std::move(node.value)).second)
        throw YamlError("duplicate key \"" + *map.key + "\"", map.keyLine);
    map.key.reset();
}

void emit(YAML::Emitter& out, const json& v) {
    switch (v.type()) {
        case json::value_t::object:
            out << YAML::BeginMap;
            for (auto it = v.begin(); it != v.end(); ++it) {
                out << YAML::Key << it.key() << YAML::Value;
                emit(out, it.value());
            }
            out << YAML::EndMap;
            break;
        case json::value_t::array:
            out << YAML::BeginSeq;
            for (const auto& item : v) emit(out, item);
            out << YAML::EndSeq;
            break;
        case json::value_t::string: {
            const std::string& s = v.get_ref<const std::string&>();
            // Quote strings that would otherwise read back as another type.
            json back = resolvePlainScalar(s);
            if (!back.is_string() || s.empty()) {
                out << YAML::DoubleQuoted << s;
            } else {
                out << s;
            }
            break;
        }
        case json::value_t::boolean:
            out << (v.get<bool>() ? "true" : "false");
            break;
        case json::value_t::null:
            out << YAML::Null;
            break;
        default:
            out << v.dump();
            break;
    }
}

// Hands `take` each document of the stream until it returns false.
template <typename Take>
void parseDocuments(const std::string& text, YamlBudget& stream, Take take) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    JsonBuilder builder(stream);
    // Every document takes at least a few bytes of text ("---\n"); yaml-cpp can report empty
    // documents forever on some malformed input (found by fuzzing: ",-----\nV"), so more
    // documents than that means it is making no progress.
    const std::size_t maxDocuments = text.size() / 3 + 2;
    std::size_t documents = 0;
    try {
        while (parser.HandleNextDocument(builder)) {
            if (++documents > maxDocuments)
                throw YamlError("malformed YAML: the parser makes no progress", 0);
            if (!take(builder)) return;
        }
    } catch (const YAML::DeepRecursion& e) {
        // Only reached when maxDepth is set above yaml-cpp's own guard.
        throw YamlError("YAML nesting deeper than yaml-cpp allows", lineOf(e));
    } catch (const YAML::Exception& e) {
        throw YamlError(e.msg, lineOf(e));
    }
}

}  // namespace

json yamlToJson(const std::string& text, const YamlLimits& limits) {
    YamlBudget stream{limits, {}};
    return yamlToJson(text, stream);
}

json yamlToJson(const std::string& text, YamlBudget& stream) {
    json doc;  // no document at all reads as null, as with YAML::Load
    parseDocuments(text, stream, [&](JsonBuilder& builder) {
        doc = builder.takeRoot();
        return false;  // the first document only
    });
    return doc;
}

std::vector<json> yamlDocumentsToJson(const std::string& text, const YamlLimits& limits) {
    YamlBudget stream{limits, {}};
    std::vector<json> docs;
    parseDocuments(text, stream, [&](JsonBuilder& builder) {
        if (!builder.empty()) docs.push_back(builder.takeRoot());
        return true;
    });
    return docs;
}

std::string jsonToYaml(const json& value) {
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetSeqFormat(YAML::Block);
    out.SetMapFormat(YAML::Block);
    emit(out, value);
    return std::string(out.c_str()) + "\n";
}

}  // namespace sluice
