#include "helm_template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "sluice/util/yaml_json.h"

namespace sluice::testing::helm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string readFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TemplateError("cannot read " + path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- syntax tree -------------------------------------------------------------------------

struct Pipeline;

struct Operand {
    enum class Kind { Field, Root, String, Number, Bool, Nil, Ident, Sub };
    Kind kind = Kind::Nil;
    std::vector<std::string> path;  // Field (from dot) and Root (from $)
    std::string text;               // String value, Ident name
    json number;                    // Number: integer or float literal
    bool boolean = false;
    std::shared_ptr<Pipeline> sub;  // Sub: ( pipeline )
};

struct Command {
    std::vector<Operand> words;
};

struct Pipeline {
    std::vector<Command> commands;
};

struct Node {
    enum class Kind { Text, Action, If, With, Range, Template };
    Kind kind = Kind::Text;
    std::string text;  // Text; Template: name
    Pipeline pipe;
    std::vector<Node> body;
    std::vector<Node> elseBody;
};

using NodeList = std::vector<Node>;

// ---- lexing: text and actions --------------------------------------------------------------

struct Token {
    bool action = false;
    std::string text;  // raw text, or the action's inside without delimiters and trim marks
    int line = 1;
};

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::vector<Token> lex(const std::string& src, const std::string& file) {
    std::vector<Token> out;
    size_t pos = 0;
    bool trimNext = false;
    auto lineAt = [&](size_t at) {
        return 1 + static_cast<int>(std::count(src.begin(), src.begin() + at, '\n'));
    };
    while (pos <= src.size()) {
        size_t open = src.find("{{", pos);
        std::string text =
            src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
        if (trimNext) {
            size_t first = 0;
            while (first < text.size() && isSpace(text[first])) ++first;
            text.erase(0, first);
        }
        if (open == std::string::npos) {
            if (!text.empty()) out.push_back({false, text, lineAt(pos)});
            break;
        }
        size_t inner = open + 2;
        bool trimLeft = src.compare(inner, 2, "- ") == 0 || src.compare(inner, 2, "-\n") == 0 ||
                        src.compare(inner, 2, "-\t") == 0;
        if (trimLeft) {
            while (!text.empty() && isSpace(text.back())) text.pop_back();
            inner += 1;
        }
        if (!text.empty()) out.push_back({false, text, lineAt(pos)});
        size_t close = src.find("}}", inner);
        // A comment may contain "}}"; it ends at "*/}}" or "*/ -}}".
        size_t firstNonSpace = inner;
        while (firstNonSpace < src.size() && isSpace(src[firstNonSpace])) ++firstNonSpace;
        bool comment = src.compare(firstNonSpace, 2, "/*") == 0;
        if (comment) {
            size_t end = src.find("*/", firstNonSpace + 2);
            if (end == std::string::npos)
                throw TemplateError(file + ":" + std::to_string(lineAt(open)) +
                                    ": unclosed comment");
            close = src.find("}}", end + 2);
        }
        if (close == std::string::npos)
            throw TemplateError(file + ":" + std::to_string(lineAt(open)) + ": unclosed action");
        size_t innerEnd = close;
        trimNext = close >= 2 && src[close - 1] == '-' && isSpace(src[close - 2]);
        if (trimNext) innerEnd = close - 1;
        if (!comment) out.push_back({true, src.substr(inner, innerEnd - inner), lineAt(open)});
        pos = close + 2;
    }
    return out;
}

// ---- parsing actions ------------------------------------------------------------------------

class ExprParser {
  public:
    ExprParser(const std::string& text, std::string where) : s_(text), where_(std::move(where)) {}

    Pipeline pipeline() {
        Pipeline p;
        for (;;) {
            p.commands.push_back(command());
            skipSpace();
            if (peek() == '|') {
                ++i_;
                continue;
            }
            break;
        }
        return p;
    }
    bool atEnd() {
        skipSpace();
        return i_ >= s_.size();
    }
    char peek() { return i_ < s_.size() ? s_[i_] : '\0'; }
    [[noreturn]] void fail(const std::string& msg) {
        throw TemplateError(where_ + ": " + msg + " in {{" + s_ + "}}");
    }
    // A string literal at the current position (for define/template names).
    std::string stringLiteral() {
        skipSpace();
        Operand o = operand();
        if (o.kind != Operand::Kind::String) fail("expected a string");
        return o.text;
    }

  private:
    void skipSpace() {
        while (i_ < s_.size() && isSpace(s_[i_])) ++i_;
    }
    static bool identChar(char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    }
    std::vector<std::string> fieldPath() {
        // At a '.': .A.B.C, or a lone '.'.
        std::vector<std::string> path;
        while (peek() == '.') {
            ++i_;
            size_t start = i_;
            while (i_ < s_.size() && identChar(s_[i_])) ++i_;
            if (i_ == start) {
                if (!path.empty()) fail("empty field name");
                break;  // lone "."
            }
            path.push_back(s_.substr(start, i_ - start));
        }
        return path;
    }
    Command command() {
        Command c;
        for (;;) {
            skipSpace();
            char ch = peek();
            if (ch == '\0' || ch == '|' || ch == ')') break;
            c.words.push_back(operand());
        }
        if (c.words.empty()) fail("empty command");
        return c;
    }
    Operand operand() {
        Operand o;
        char ch = peek();
        if (ch == '(') {
            ++i_;
            o.kind = Operand::Kind::Sub;
            o.sub = std::make_shared<Pipeline>(pipeline());
            skipSpace();
            if (peek() != ')') fail("missing )");
            ++i_;
            if (peek() == '.') fail("fields of a parenthesised pipeline are not supported");
        } else if (ch == '.') {
            o.kind = Operand::Kind::Field;
            o.path = fieldPath();
        } else if (ch == '$') {
            ++i_;
            if (identChar(peek())) fail("template variables are not supported");
            o.kind = Operand::Kind::Root;
            if (peek() == '.') o.path = fieldPath();
        } else if (ch == '"') {
            ++i_;
            o.kind = Operand::Kind::String;
            for (;;) {
                if (i_ >= s_.size()) fail("unterminated string");
                char c = s_[i_++];
                if (c == '"') break;
                if (c == '\\') {
                    if (i_ >= s_.size()) fail("unterminated string");
                    char e = s_[i_++];
                    switch (e) {
                        case 'n':
                            o.text += '\n';
                            break;
                        case 't':
                            o.text += '\t';
                            break;
                        case '\\':
                            o.text += '\\';
                            break;
                        case '"':
                            o.text += '"';
                            break;
                        default:
                            fail(std::string("unsupported escape \\") + e);
                    }
                } else {
                    o.text += c;
                }
            }
        } else if (ch == '`') {
            ++i_;
            size_t end = s_.find('`', i_);
            if (end == std::string::npos) fail("unterminated raw string");
            o.kind = Operand::Kind::String;
            o.text = s_.substr(i_, end - i_);
            i_ = end + 1;
        } else if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '+') {
            size_t start = i_++;
            while (i_ < s_.size() &&
                   (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.'))
                ++i_;
            std::string num = s_.substr(start, i_ - start);
            o.kind = Operand::Kind::Number;
            try {
                if (num.find('.') == std::string::npos)
                    o.number = std::stoll(num);
                else
                    o.number = std::stod(num);
            } catch (const std::exception&) {
                fail("bad number " + num);
            }
        } else if (identChar(ch)) {
            size_t start = i_;
            while (i_ < s_.size() && identChar(s_[i_])) ++i_;
            std::string word = s_.substr(start, i_ - start);
            if (word == "true" || word == "false") {
                o.kind = Operand::Kind::Bool;
                o.boolean = word == "true";
            } else if (word == "nil") {
                o.kind = Operand::Kind::Nil;
            } else {
                o.kind = Operand::Kind::Ident;
                o.text = word;
            }
            if (peek() == '.') fail("fields of a function result are not supported");
        } else if (ch == ':' || ch == '=') {
            fail("variable assignment is not supported");
        } else {
            fail(std::string("unexpected '") + ch + "'");
        }
        return o;
    }

    const std::string& s_;
    std::string where_;
    size_t i_ = 0;
};

// Splits an action into its keyword ("if", "end", ...) and the rest; "" for a plain pipeline.
std::pair<std::string, std::string> keyword(const std::string& action) {
    size_t b = 0;
    while (b < action.size() && isSpace(action[b])) ++b;
    size_t e = b;
    while (e < action.size() && (std::isalpha(static_cast<unsigned char>(action[e])))) ++e;
    std::string word = action.substr(b, e - b);
    static const std::vector<std::string> keywords = {
        "if", "else", "end", "with", "range", "define", "template", "block", "break", "continue"};
    if (std::find(keywords.begin(), keywords.end(), word) == keywords.end()) return {"", action};
    if (e < action.size() && !isSpace(action[e])) return {"", action};
    return {word, action.substr(e)};
}

class Parser {
  public:
    Parser(std::vector<Token> tokens, std::string file, std::map<std::string, NodeList>& defines)
        : tokens_(std::move(tokens)), file_(std::move(file)), defines_(defines) {}

    NodeList parseFile() {
        std::string stop;
        NodeList list = parseList(stop);
        if (!stop.empty()) fail("unexpected {{" + stop + "}}");
        return list;
    }

  private:
    [[noreturn]] void fail(const std::string& msg) {
        int line = pos_ > 0 && pos_ <= tokens_.size() ? tokens_[pos_ - 1].line : 0;
        throw TemplateError(file_ + ":" + std::to_string(line) + ": " + msg);
    }
    std::string where() {
        return file_ + ":" + std::to_string(pos_ > 0 ? tokens_[pos_ - 1].line : 0);
    }
    Pipeline pipelineOf(const std::string& text) {
        ExprParser p(text, where());
        Pipeline pipe = p.pipeline();
        if (!p.atEnd()) p.fail("unexpected text after the pipeline");
        return pipe;
    }
    // Parses nodes up to an {{end}} or {{else}}; `stop` receives which one ("" at the end).
    NodeList parseList(std::string& stop) {
        NodeList list;
        while (pos_ < tokens_.size()) {
            const Token& t = tokens_[pos_++];
            if (!t.action) {
                list.push_back(Node{Node::Kind::Text, t.text, {}, {}, {}});
                continue;
            }
            auto [word, rest] = keyword(t.text);
            if (word.empty()) {
                Node n;
                n.kind = Node::Kind::Action;
                n.pipe = pipelineOf(t.text);
                list.push_back(std::move(n));
            } else if (word == "end") {
                if (rest.find_first_not_of(" \t\r\n") != std::string::npos) fail("text after end");
                stop = "end";
                return list;
            } else if (word == "else") {
                if (rest.find_first_not_of(" \t\r\n") != std::string::npos)
                    fail("else if / else with is not supported");
                stop = "else";
                return list;
            } else if (word == "if" || word == "with" || word == "range") {
                Node n;
                n.kind = word == "if"     ? Node::Kind::If
                         : word == "with" ? Node::Kind::With
                                          : Node::Kind::Range;
                n.pipe = pipelineOf(rest);
                std::string s;
                n.body = parseList(s);
                if (s == "else") {
                    n.elseBody = parseList(s);
                    if (s != "end") fail("{{" + word + "}} ... {{else}} without {{end}}");
                } else if (s != "end") {
                    fail("{{" + word + "}} without {{end}}");
                }
                list.push_back(std::move(n));
            } else if (word == "define") {
                ExprParser p(rest, where());
                std::string name = p.stringLiteral();
                if (!p.atEnd()) p.fail("define takes one name");
                std::string s;
                NodeList body = parseList(s);
                if (s != "end") fail("define \"" + name + "\" without {{end}}");
                defines_[name] = std::move(body);
            } else if (word == "template") {
                ExprParser p(rest, where());
                Node n;
                n.kind = Node::Kind::Template;
                n.text = p.stringLiteral();
                if (!p.atEnd()) n.pipe = p.pipeline();
                list.push_back(std::move(n));
            } else {
                fail("{{" + word + "}} is not supported");
            }
        }
        stop.clear();
        return list;
    }

    std::vector<Token> tokens_;
    std::string file_;
    std::map<std::string, NodeList>& defines_;
    size_t pos_ = 0;
};

// ---- values ---------------------------------------------------------------------------------

// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
bool truthy(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return false;
        case json::value_t::boolean:
            return v.get<bool>();
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return v.get<long long>() != 0;
        case json::value_t::number_float:
            return v.get<double>() != 0.0;
        case json::value_t::string:
            return !v.get_ref<const std::string&>().empty();
        case json::value_t::array:
        case json::value_t::object:
            return !v.empty();
        default:
            return true;
    }
}

std::string formatFloat(double d) {
    // Go prints float64 with %v, the shortest representation in %g style (1, 2.5, 1e+06).
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general);
    std::string s(buf, r.ptr);
    // Go writes two exponent digits at least, as C does.
    auto e = s.find('e');
    if (e != std::string::npos) {
        std::string mant = s.substr(0, e), exp = s.substr(e + 1);
        char sign = '+';
        if (!exp.empty() && (exp[0] == '+' || exp[0] == '-')) {
            sign = exp[0];
            exp.erase(0, 1);
        }
        if (exp.size() < 2) exp = "0" + exp;
        s = mant + "e" + sign + exp;
    }
    return s;
}

// The text Go's template prints for a value.
std::string printed(const json& v, const std::string& where) {
    switch (v.type()) {
        case json::value_t::null:
            return "";  // Helm removes "<no value>"
        case json::value_t::string:
            return v.get<std::string>();
        case json::value_t::boolean:
            return v.get<bool>() ? "true" : "false";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return std::to_string(v.get<long long>());
        case json::value_t::number_float:
            return formatFloat(v.get<double>());
        default:
            throw TemplateError(where + ": printing a " + std::string(v.type_name()) +
                                " directly (use toYaml)");
    }
}

// Helm's toYaml: float64 values that are whole numbers are written as integers.
json integralNumbers(const json& v) {
    if (v.is_object() || v.is_array()) {
        json out = v;
        for (auto& item : out) item = integralNumbers(item);
        return out;
    }
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::floor(d) == d && std::fabs(d) < 1e15) return static_cast<long long>(d);
    }
    return v;
}

std::string indentText(int n, const std::string& s) {
    std::string pad(static_cast<size_t>(n), ' ');
    std::string out = pad;
    for (char c : s) {
        out += c;
        if (c == '\n') out += pad;
    }
    return out;
}

std::string goQuote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
    return out + "\"";
}

enum class NumKind { Int, Float, None };
NumKind numKind(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return NumKind::Int;
    if (v.is_number_float()) return NumKind::Float;
    return NumKind::None;
}

// Go's basic-kind comparison for eq/lt/...: the kinds must match (int vs float64 is an error).
int compareValues(const json& a, const json& b, const std::string& where, bool orderOnly) {
    auto incompatible = [&] {
        throw TemplateError(where + ": incompatible types for comparison: " +
                            std::string(a.type_name()) + " and " + b.type_name());
    };
    NumKind ka = numKind(a), kb = numKind(b);
    if (ka != NumKind::None || kb != NumKind::None) {
        if (ka != kb) incompatible();
        if (ka == NumKind::Int) {
            long long x = a.get<long long>(), y = b.get<long long>();
            return x < y ? -1 : x > y ? 1 : 0;
        }
        double x = a.get<double>(), y = b.get<double>();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) return a.get<std::string>().compare(b.get<std::string>());
    if (a.is_boolean() && b.is_boolean() && !orderOnly) return a == b ? 0 : 1;
    if (a.is_null() && b.is_null() && !orderOnly) return 0;
    incompatible();
    return 0;
}

}  // namespace

// ---- engine ---------------------------------------------------------------------------------

struct Engine::Impl {
    std::map<std::string, NodeList> files;
    std::map<std::string, NodeList> defines;
    std::map<std::string, std::string> fileContents;  // for .Files.Get
    json root;
    int depth = 0;

    void parse(const std::string& name, const std::string& text) {
        Parser parser(lex(text, name), name, defines);
        files[name] = parser.parseFile();
    }

    std::string exec(const NodeList& list, const json& dot, const std::string& where) {
        std::string out;
        for (const auto& n : list) {
            switch (n.kind) {
                case Node::Kind::Text:
                    out += n.text;
                    break;
                case Node::Kind::Action:
                    out += printed(eval(n.pipe, dot, where), where);
                    break;
                case Node::Kind::If:
                    out += exec(truthy(eval(n.pipe, dot, where)) ? n.body : n.elseBody, dot, where);
                    break;
                case Node::Kind::With: {
                    json v = eval(n.pipe, dot, where);
                    out += truthy(v) ? exec(n.body, v, where) : exec(n.elseBody, dot, where);
                    break;
                }
                case Node::Kind::Range: {
                    json v = eval(n.pipe, dot, where);
                    if (!v.is_null() && !v.is_array() && !v.is_object())
                        throw TemplateError(where + ": range over a " + std::string(v.type_name()));
                    if (!truthy(v)) {
                        out += exec(n.elseBody, dot, where);
                        break;
                    }
                    // json objects iterate in key order, as Go ranges over a map.
                    for (const auto& item : v) out += exec(n.body, item, where);
                    break;
                }
                case Node::Kind::Template:
                    out += include(
                        n.text, n.pipe.commands.empty() ? json(nullptr) : eval(n.pipe, dot, where),
                        where);
                    break;
            }
        }
        return out;
    }

    std::string include(const std::string& name, const json& dot, const std::string& where) {
        auto it = defines.find(name);
        if (it == defines.end()) throw TemplateError(where + ": no template \"" + name + "\"");
        if (++depth > 50) throw TemplateError(where + ": include nested too deeply");
        std::string out = exec(it->second, dot, "template \"" + name + "\"");
        --depth;
        return out;
    }

    json field(const json& start, const std::vector<std::string>& path, const std::string& where) {
        const json* cur = &start;
        std::string walked;
        for (size_t i = 0; i < path.size(); ++i) {
            const std::string& name = path[i];
            if (cur->is_null())
                throw TemplateError(where + ": nil pointer evaluating " + walked + "." + name);
            if (!cur->is_object())
                throw TemplateError(where + ": can't evaluate field " + name + " in a " +
                                    std::string(cur->type_name()));
            walked += "." + name;
            auto it = cur->find(name);
            if (it == cur->end()) {
                // A missing map key is nil, as in Go; a field of it is an error.
                if (i + 1 < path.size())
                    throw TemplateError(where + ": nil pointer evaluating " + walked + "." +
                                        path[i + 1]);
                return nullptr;
            }
            cur = &*it;
        }
        return *cur;
    }

    json operand(const Operand& o, const json& dot, const std::string& where) {
        switch (o.kind) {
            case Operand::Kind::Field:
                return field(dot, o.path, where);
            case Operand::Kind::Root:
                return field(root, o.path, where);
            case Operand::Kind::String:
                return o.text;
            case Operand::Kind::Number:
                return o.number;
            case Operand::Kind::Bool:
                return o.boolean;
            case Operand::Kind::Nil:
                return nullptr;
            case Operand::Kind::Sub:
                return eval(*o.sub, dot, where);
            case Operand::Kind::Ident:
                return call(o.text, {}, where);
        }
        return nullptr;
    }

    json eval(const Pipeline& p, const json& dot, const std::string& where) {
        json value;
        bool piped = false;
        for (const auto& c : p.commands) {
            const Operand& head = c.words.front();
            bool isFilesGet = head.kind == Operand::Kind::Field && head.path.size() == 2 &&
                              head.path[0] == "Files" && head.path[1] == "Get";
            if (head.kind == Operand::Kind::Ident || isFilesGet) {
                std::vector<json> args;
                for (size_t i = 1; i < c.words.size(); ++i)
                    args.push_back(operand(c.words[i], dot, where));
                if (piped) args.push_back(value);
                value = isFilesGet ? filesGet(args, where) : call(head.text, args, where);
            } else {
                if (c.words.size() > 1 || piped)
                    throw TemplateError(where + ": can't give an argument to a non-function");
                value = operand(head, dot, where);
            }
            piped = true;
        }
        return value;
    }

    json filesGet(const std::vector<json>& args, const std::string& where) {
        if (args.size() != 1 || !args[0].is_string())
            throw TemplateError(where + ": .Files.Get takes one path");
        auto it = fileContents.find(args[0].get<std::string>());
        // Helm returns "" for a missing file; a test wants to know.
        if (it == fileContents.end())
            throw TemplateError(where + ": .Files.Get: no file " + args[0].dump());
        return it->second;
    }

    json call(const std::string& fn, const std::vector<json>& args, const std::string& where) {
        auto want = [&](size_t n) {
            if (args.size() != n)
                throw TemplateError(where + ": " + fn + " takes " + std::to_string(n) +
                                    " arguments, got " + std::to_string(args.size()));
        };
        auto intArg = [&](const json& v) -> int {
            if (v.is_number()) return static_cast<int>(v.get<double>());
            throw TemplateError(where + ": " + fn + ": not a number: " + v.dump());
        };
        if (fn == "include") {
            want(2);
            if (!args[0].is_string()) throw TemplateError(where + ": include needs a name");
            return include(args[0].get<std::string>(), args[1], where);
        }
        if (fn == "toYaml") {
            want(1);
            std::string y = jsonToYaml(integralNumbers(args[0]));
            while (!y.empty() && y.back() == '\n') y.pop_back();
            return y;
        }
        if (fn == "indent" || fn == "nindent") {
            want(2);
            std::string s = printed(args[1], where);
            return (fn == "nindent" ? "\n" : "") + indentText(intArg(args[0]), s);
        }
        if (fn == "quote") {
            std::string out;
            for (const auto& a : args) {
                if (a.is_null()) continue;
                if (!out.empty()) out += " ";
                out += goQuote(printed(a, where));
            }
            return out;
        }
        if (fn == "default") {
            if (args.empty() || args.size() > 2)
                throw TemplateError(where + ": default takes 1 or 2 arguments");
            if (args.size() == 1 || !truthy(args[1])) return args[0];
            return args[1];
        }
        if (fn == "not") {
            want(1);
            return !truthy(args[0]);
        }
        if (fn == "and" || fn == "or") {
            if (args.empty()) throw TemplateError(where + ": " + fn + " needs arguments");
            for (const auto& a : args)
                if (truthy(a) == (fn == "or")) return a;
            return args.back();
        }
        if (fn == "eq") {
            if (args.size() < 2) throw TemplateError(where + ": eq needs two arguments");
            for (size_t i = 1; i < args.size(); ++i)
                if (compareValues(args[0], args[i], where, false) == 0) return true;
            return false;
        }
        if (fn == "ne") {
            want(2);
            return compareValues(args[0], args[1], where, false) != 0;
        }
        if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
            want(2);
            int c = compareValues(args[0], args[1], where, true);
            if (fn == "lt") return c < 0;
            if (fn == "le") return c <= 0;
            if (fn == "gt") return c > 0;
            return c >= 0;
        }
        if (fn == "int") {
            want(1);
            const json& v = args[0];
            if (v.is_null()) return 0;
            if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
            if (v.is_number()) return static_cast<long long>(v.get<double>());
            if (v.is_string()) {
                try {
                    return std::stoll(v.get<std::string>());
                } catch (const std::exception&) {
                    return 0;  // Sprig's toInt
                }
            }
            throw TemplateError(where + ": int of a " + std::string(v.type_name()));
        }
        throw TemplateError(where + ": function \"" + fn + "\" is not supported");
    }
};

json mergeValues(json base, const json& override) {
    if (override.is_null()) return base;
    if (!base.is_object() || !override.is_object()) return override;
    for (auto it = override.begin(); it != override.end(); ++it) {
        if (base.contains(it.key()) && base[it.key()].is_object() && it.value().is_object())
            base[it.key()] = mergeValues(base[it.key()], it.value());
        else
            base[it.key()] = it.value();
    }
    return base;
}

json helmValues(const json& v) {
    if (v.is_object() || v.is_array()) {
        json out = v;
        for (auto& item : out) item = helmValues(item);
        return out;
    }
    if (v.is_number_integer() || v.is_number_unsigned())
        return static_cast<double>(v.get<long long>());
    return v;
}

namespace {

json chartField(const json& chartYaml) {
    // Helm exposes Chart.yaml's fields with an upper-case first letter.
    json chart = json::object();
    for (auto it = chartYaml.begin(); it != chartYaml.end(); ++it) {
        std::string key = it.key();
        key[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(key[0])));
        chart[key] = it.value();
    }
    return chart;
}

}  // namespace

Engine::Engine(const fs::path& chartDir, const json& overrides, Release release)
    : impl_(std::make_unique<Impl>()) {
    json values = helmValues(yamlToJson(readFile(chartDir / "values.yaml")));
    values = mergeValues(values, helmValues(overrides));
    json chart = chartField(yamlToJson(readFile(chartDir / "Chart.yaml")));
    impl_->root = {{"Values", values},
                   {"Chart", chart},
                   {"Release",
                    {{"Name", release.name},
                     {"Namespace", release.ns},
                     {"Service", "Helm"},
                     {"IsInstall", true},
                     {"IsUpgrade", false}}}};
    for (const auto& entry : fs::recursive_directory_iterator(chartDir)) {
        if (!entry.is_regular_file()) continue;
        std::string rel = fs::relative(entry.path(), chartDir).generic_string();
        if (rel.rfind("templates/", 0) == 0)
            impl_->parse(entry.path().filename().string(), readFile(entry.path()));
        else
            impl_->fileContents[rel] = readFile(entry.path());
    }
}

Engine::Engine(std::map<std::string, std::string> templates, json values, json chart,
               Release release, std::map<std::string, std::string> files)
    : impl_(std::make_unique<Impl>()) {
    impl_->root = {{"Values", helmValues(values)},
                   {"Chart", chartField(chart)},
                   {"Release",
                    {{"Name", release.name},
                     {"Namespace", release.ns},
                     {"Service", "Helm"},
                     {"IsInstall", true},
                     {"IsUpgrade", false}}}};
    impl_->fileContents = std::move(files);
    for (const auto& [name, text] : templates) impl_->parse(name, text);
}

Engine::~Engine() = default;

std::string Engine::render(const std::string& file) const {
    auto it = impl_->files.find(file);
    if (it == impl_->files.end()) throw TemplateError("no template file " + file);
    return impl_->exec(it->second, impl_->root, file);
}

std::map<std::string, std::string> Engine::renderManifests() const {
    std::map<std::string, std::string> out;
    for (const auto& [name, nodes] : impl_->files) {
        if (name.rfind("_", 0) == 0 || name == "NOTES.txt") continue;
        out[name] = render(name);
    }
    return out;
}

std::vector<json> Engine::renderObjects() const {
    std::vector<json> objects;
    for (const auto& [name, text] : renderManifests()) {
        try {
            for (auto& doc : yamlDocumentsToJson(text)) objects.push_back(std::move(doc));
        } catch (const YamlError& e) {
            throw TemplateError(name + " renders invalid YAML (line " + std::to_string(e.line) +
                                "): " + e.what() + "\n" + text);
        }
    }
    return objects;
}

const json& Engine::values() const {
    return impl_->root["Values"];
}

}  // namespace sluice::testing::helm
