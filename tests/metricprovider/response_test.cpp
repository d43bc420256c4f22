// interpretQueryResponse, credentials and whitespace handling: no network.
#include <gtest/gtest.h>

#include <cmath>

#include "sluice/metricprovider/client.h"
#include "sluice/metricprovider/provider.h"

namespace sluice::metricprovider {
namespace {

using Kind = canaryengine::MetricResult::Kind;

std::string vectorBody(const std::vector<std::string>& values) {
    std::string result;
    for (size_t i = 0; i < values.size(); ++i) {
        if (i) result += ",";
        result += R"({"metric":{"pod":"p)" + std::to_string(i) + R"("},"value":[1700000000.5,")" +
                  values[i] + R"("]})";
    }
    return R"({"status":"success","data":{"resultType":"vector","result":[)" + result + "]}}";
}

TEST(InterpretQueryResponse, VectorGivesTheSampleValue) {
    auto r = interpretQueryResponse(200, vectorBody({"99.5"}));
    EXPECT_EQ(r.kind, Kind::Value);
    EXPECT_DOUBLE_EQ(r.value, 99.5);
    EXPECT_TRUE(r.hasValue());
}

TEST(InterpretQueryResponse, SeveralSeriesGiveTheFirst) {
    auto r = interpretQueryResponse(200, vectorBody({"1.25", "7", "9"}));
    ASSERT_EQ(r.kind, Kind::Value);
    EXPECT_DOUBLE_EQ(r.value, 1.25);
}

TEST(InterpretQueryResponse, ScalarAndExponentForms) {
    auto r = interpretQueryResponse(
        200,
        R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"1e-05"]}})");
    ASSERT_EQ(r.kind, Kind::Value);
    EXPECT_DOUBLE_EQ(r.value, 1e-05);
    r = interpretQueryResponse(200, vectorBody({"-3"}));
    ASSERT_EQ(r.kind, Kind::Value);
    EXPECT_DOUBLE_EQ(r.value, -3);
}

TEST(InterpretQueryResponse, EmptyVectorIsNoData) {
    auto r = interpretQueryResponse(200, vectorBody({}));
    EXPECT_EQ(r.kind, Kind::NoData);
    EXPECT_NE(r.reason.find("no series"), std::string::npos) << r.reason;
    EXPECT_FALSE(r.hasValue());
}

TEST(InterpretQueryResponse, NaNAndInfinitiesAreNoData) {
    for (std::string v : {"NaN", "+Inf", "-Inf"}) {
        auto r = interpretQueryResponse(200, vectorBody({v}));
        EXPECT_EQ(r.kind, Kind::NoData) << v;
        EXPECT_NE(r.reason.find(v), std::string::npos) << r.reason;
    }
    auto r = interpretQueryResponse(
        200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}})");
    EXPECT_EQ(r.kind, Kind::NoData);
}

TEST(InterpretQueryResponse, ApiErrorBodyIsAQueryErrorWithTypeAndMessage) {
    auto r = interpretQueryResponse(
        400, R"({"status":"error","errorType":"bad_data","error":"parse error: unexpected }"})");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("HTTP 400"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("bad_data: parse error: unexpected }"), std::string::npos) << r.reason;
    // Even when a proxy turns it into a 200.
    r = interpretQueryResponse(200, R"({"status":"error","errorType":"timeout","error":"x"})");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("timeout: x"), std::string::npos) << r.reason;
}

TEST(InterpretQueryResponse, HttpErrorsAndGarbageAreQueryErrors) {
    auto r = interpretQueryResponse(502, "<html>Bad Gateway</html>");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("HTTP 502"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("Bad Gateway"), std::string::npos) << r.reason;
    // A 5xx whose body looks like a success is still not a value.
    r = interpretQueryResponse(503, vectorBody({"100"}));
    EXPECT_EQ(r.kind, Kind::QueryError);
    for (std::string body : {"", "not json", "[1,2]", R"({"status":"success"})",
                             R"({"status":"success","data":{"resultType":"vector"}})",
                             R"({"status":"weird","data":{}})"}) {
        r = interpretQueryResponse(200, body);
        EXPECT_EQ(r.kind, Kind::QueryError) << body;
        EXPECT_FALSE(r.reason.empty());
    }
}

TEST(InterpretQueryResponse, MalformedSamplesAreQueryErrors) {
    for (
        std::string body :
        {vectorBody({"abc"}), vectorBody({"12abc"}), vectorBody({""}),
         std::string(
             R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1, 5]}]}})"),
         std::string(
             R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}})"),
         std::string(
             R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}})")}) {
        auto r = interpretQueryResponse(200, body);
        EXPECT_EQ(r.kind, Kind::QueryError) << body;
    }
}

TEST(InterpretQueryResponse, MatrixAndStringResultsAreQueryErrors) {
    auto r = interpretQueryResponse(
        200,
        R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}})");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("matrix"), std::string::npos) << r.reason;
    r = interpretQueryResponse(
        200, R"({"status":"success","data":{"resultType":"string","result":[1,"hello"]}})");
    EXPECT_EQ(r.kind, Kind::QueryError);
}

TEST(Credentials, TokenWinsOverBasicAuth) {
    auto c = credentialsFromSecretData({{"token", "abc"}, {"username", "u"}, {"password", "p"}});
    ASSERT_TRUE(c.ok()) << c.error;
    EXPECT_EQ(c.credentials.bearerToken, "abc");
    EXPECT_TRUE(c.credentials.username.empty());
}

TEST(Credentials, BasicAuthNeedsUsernameAndPassword) {
    auto c = credentialsFromSecretData({{"username", "u"}, {"password", "p"}});
    ASSERT_TRUE(c.ok()) << c.error;
    EXPECT_EQ(c.credentials.username, "u");
    EXPECT_EQ(c.credentials.password, "p");
    c = credentialsFromSecretData({{"username", "u"}});
    EXPECT_FALSE(c.ok());
    EXPECT_NE(c.error.find("\"password\""), std::string::npos) << c.error;
    c = credentialsFromSecretData({{"password", "p"}});
    EXPECT_NE(c.error.find("\"username\""), std::string::npos) << c.error;
    c = credentialsFromSecretData({});
    EXPECT_FALSE(c.ok());
    c = credentialsFromSecretData({{"token", ""}});
    EXPECT_FALSE(c.ok());
}

TEST(CollapseWhitespace, CollapsesOutsideStringLiteralsOnly) {
    EXPECT_EQ(collapseWhitespace("\n  sum(\n\trate(x[1m])\n)  \n* 100\n"),
              "sum( rate(x[1m]) ) * 100");
    EXPECT_EQ(collapseWhitespace(R"(x{a="two  spaces", b='q\'  x'} + `raw  "  text`)"),
              R"(x{a="two  spaces", b='q\'  x'} + `raw  "  text`)");
    EXPECT_EQ(collapseWhitespace(R"(x{a="esc\"  aped"}   or   y)"), R"(x{a="esc\"  aped"} or y)");
    EXPECT_EQ(collapseWhitespace(" \n\t "), "");
}

TEST(ScriptedMetricProvider, AnswersByRuleAndNeverPassesByDefault) {
    ScriptedMetricProvider p;
    auto r = p.query("anything");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("anything"), std::string::npos);

    p.whenQueryContains("http_requests_total", canaryengine::MetricResult::measured(99));
    p.whenQueryContains("duration", canaryengine::MetricResult::noData("quiet"));
    EXPECT_DOUBLE_EQ(p.query("sum(http_requests_total)").value, 99);
    EXPECT_EQ(p.query("request duration").kind, Kind::NoData);
    p.whenQueryContains("http_requests_total",
                        canaryengine::MetricResult::measured(42));  // replaces
    EXPECT_DOUBLE_EQ(p.query("sum(http_requests_total)").value, 42);

    p.setDefault(canaryengine::MetricResult::measured(1));
    EXPECT_DOUBLE_EQ(p.query("other").value, 1);
    p.clearRules();
    EXPECT_DOUBLE_EQ(p.query("sum(http_requests_total)").value, 1);
    EXPECT_EQ(p.queries().size(), 6u);
    EXPECT_EQ(p.queries().front(), "anything");
}

}  // namespace
}  // namespace sluice::metricprovider
