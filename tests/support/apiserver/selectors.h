#pragma once
// Label and field selectors in the query-string syntax of the list/watch API.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sluice::testing {

class LabelSelector {
  public:
    // "a=b,c!=d,e in (x,y),f notin (z),g,!h". Throws ApiError 400 when malformed.
    static LabelSelector parse(const std::string& text);
    bool matches(const nlohmann::json& obj) const;
    bool empty() const { return reqs_.empty(); }

  private:
    enum class Op { Eq, NotEq, In, NotIn, Exists, NotExists };
    struct Req {
        std::string key;
        Op op;
        std::vector<std::string> values;
    };
    std::vector<Req> reqs_;
};

class FieldSelector {
  public:
    // "metadata.name=x,metadata.namespace!=y", plus the field labels kube-apiserver supports
    // for `kind` (Pod status.phase and spec.nodeName, Event reason/type/involvedObject.*, ...).
    // Any other label is a 400 "field label not supported", as there.
    static FieldSelector parse(const std::string& text, const std::string& kind);
    bool matches(const nlohmann::json& obj) const;
    bool empty() const { return reqs_.empty(); }

  private:
    struct Req {
        std::string field;
        std::string path;  // dotted object path the label reads
        bool equal;
        std::string value;
    };
    std::vector<Req> reqs_;
};

}  // namespace sluice::testing
