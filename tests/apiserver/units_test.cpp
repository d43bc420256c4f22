// Pure pieces of the API server: selectors, continue tokens, fault rule matching.
#include <gtest/gtest.h>

#include "apiserver/api_server.h"
#include "apiserver/continue_token.h"
#include "apiserver/selectors.h"
#include "sluice/util/base64.h"

namespace sluice::testing {
namespace {

using nlohmann::json;

json withLabels(json labels) {
    return {{"metadata", {{"name", "n"}, {"namespace", "ns"}, {"labels", labels}}}};
}

TEST(LabelSelectorTest, Operators) {
    json o = withLabels({{"app", "web"}, {"tier", "fe"}});
    EXPECT_TRUE(LabelSelector::parse("").matches(o));
    EXPECT_TRUE(LabelSelector::parse("app=web").matches(o));
    EXPECT_TRUE(LabelSelector::parse("app==web").matches(o));
    EXPECT_FALSE(LabelSelector::parse("app!=web").matches(o));
    EXPECT_TRUE(LabelSelector::parse("missing!=x").matches(o));
    EXPECT_TRUE(LabelSelector::parse("app in (db, web)").matches(o));
    EXPECT_FALSE(LabelSelector::parse("app notin (db,web)").matches(o));
    EXPECT_TRUE(LabelSelector::parse("tier").matches(o));
    EXPECT_FALSE(LabelSelector::parse("!tier").matches(o));
    EXPECT_TRUE(LabelSelector::parse("app=web,tier in (fe)").matches(o));
    EXPECT_FALSE(LabelSelector::parse("app=web,tier=be").matches(o));
    EXPECT_THROW(LabelSelector::parse("app in web"), ApiError);
    EXPECT_THROW(LabelSelector::parse("a=b,,c"), ApiError);
}

TEST(FieldSelectorTest, SupportedFields) {
    json o = withLabels(json::object());
    EXPECT_TRUE(FieldSelector::parse("metadata.name=n", "ConfigMap").matches(o));
    EXPECT_FALSE(FieldSelector::parse("metadata.namespace!=ns", "ConfigMap").matches(o));
    EXPECT_THROW(FieldSelector::parse("status.phase=Running", "ConfigMap"), ApiError);
    o["status"]["phase"] = "Running";
    EXPECT_TRUE(FieldSelector::parse("status.phase=Running", "Pod").matches(o));
    try {
        FieldSelector::parse("spec.x=1", "Pod");
        FAIL();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.code(), 400);
        EXPECT_EQ(e.reason(), "BadRequest");
    }
}

TEST(FieldSelectorTest, EventFieldsAsKubectlGetEventsUsesThem) {
    json ev = {{"metadata", {{"name", "e1"}, {"namespace", "ns"}}},
               {"reason", "DriftCorrected"},
               {"type", "Normal"},
               {"source", {{"component", "sluice-controller"}}},
               {"involvedObject", {{"kind", "Application"}, {"name", "guestbook"}}}};
    EXPECT_TRUE(FieldSelector::parse("reason=DriftCorrected", "Event").matches(ev));
    EXPECT_FALSE(FieldSelector::parse("reason=SyncFailed", "Event").matches(ev));
    EXPECT_TRUE(FieldSelector::parse(
                    "involvedObject.kind=Application,involvedObject.name=guestbook", "Event")
                    .matches(ev));
    EXPECT_TRUE(
        FieldSelector::parse("source=sluice-controller,type!=Warning", "Event").matches(ev));
    // An absent field reads as "".
    EXPECT_TRUE(FieldSelector::parse("involvedObject.namespace=", "Event").matches(ev));
    EXPECT_THROW(FieldSelector::parse("reason=x", "ConfigMap"), ApiError);
    EXPECT_TRUE(FieldSelector::parse("type=Opaque", "Secret").matches(json{{"type", "Opaque"}}));
}

TEST(ContinueTokenTest, RoundTripAndRejectsGarbage) {
    std::string start("default/name");
    start.push_back('\0');
    auto tok = encodeContinueToken(42, start);
    auto back = decodeContinueToken(tok);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->rv, 42u);
    EXPECT_EQ(back->start, start);
    EXPECT_FALSE(decodeContinueToken("not base64!"));
    EXPECT_FALSE(decodeContinueToken(base64Encode("{\"v\":\"other\",\"rv\":1,\"start\":\"\"}")));
}

TEST(FaultInjectorTest, RulesMatchAndCountDown) {
    FaultInjector f;
    f.failNext(2, 500, "GET", "/pods");
    EXPECT_FALSE(f.take("POST", "/api/v1/pods"));
    EXPECT_FALSE(f.take("GET", "/api/v1/configmaps"));
    EXPECT_EQ(f.take("GET", "/api/v1/pods")->httpCode, 500);
    EXPECT_TRUE(f.take("GET", "/api/v1/pods?watch=1"));
    EXPECT_FALSE(f.take("GET", "/api/v1/pods"));
    f.throttleNext(1, 7);
    auto t = f.take("DELETE", "/x");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->action, FaultInjector::Action::Throttle);
    EXPECT_EQ(t->retryAfterSeconds, 7);
    f.disconnectNext(3);
    f.clear();
    EXPECT_FALSE(f.take("GET", "/"));
}

}  // namespace
}  // namespace sluice::testing
