#include <gtest/gtest.h>

#include "sluice/kube/client.h"
#include "sluice/kube/errors.h"
#include "sluice/kube/paths.h"
#include "sluice/kube/types.h"

namespace sluice::kube {
namespace {

TEST(GvkTest, FromApiVersion) {
    auto apps = GroupVersionKind::fromApiVersion("apps/v1", "Deployment");
    EXPECT_EQ(apps.group, "apps");
    EXPECT_EQ(apps.version, "v1");
    EXPECT_EQ(apps.kind, "Deployment");
    EXPECT_EQ(apps.apiVersion(), "apps/v1");
    EXPECT_EQ(apps.groupVersion(), "apps/v1");
    EXPECT_EQ(apps.str(), "apps/v1, Kind=Deployment");

    auto core = GroupVersionKind::fromApiVersion("v1", "ConfigMap");
    EXPECT_EQ(core.group, "");
    EXPECT_EQ(core.version, "v1");
    EXPECT_EQ(core.apiVersion(), "v1");
    EXPECT_EQ(core.str(), "v1, Kind=ConfigMap");
}

TEST(GvkTest, OfObjectAndOrdering) {
    Object obj = {{"apiVersion", "example.com/v1alpha1"}, {"kind", "Widget"}};
    EXPECT_EQ(GroupVersionKind::of(obj), (GroupVersionKind{"example.com", "v1alpha1", "Widget"}));
    EXPECT_EQ(GroupVersionKind::of(Object::object()), GroupVersionKind{});
    EXPECT_EQ(GroupVersionKind::of(Object{{"apiVersion", 3}}), GroupVersionKind{});
    EXPECT_LT((GroupVersionKind{"", "v1", "Pod"}), (GroupVersionKind{"apps", "v1", "Deployment"}));
}

TEST(ObjectAccessorsTest, TolerateMissingFields) {
    Object obj = {
        {"metadata",
         {{"name", "web"}, {"namespace", "prod"}, {"resourceVersion", "42"}, {"uid", "u-1"}}}};
    EXPECT_EQ(nameOf(obj), "web");
    EXPECT_EQ(namespaceOf(obj), "prod");
    EXPECT_EQ(resourceVersionOf(obj), "42");
    EXPECT_EQ(uidOf(obj), "u-1");
    EXPECT_EQ(keyOf(obj), (ObjectKey{"prod", "web"}));
    EXPECT_EQ(keyOf(obj).str(), "prod/web");
    EXPECT_EQ((ObjectKey{"", "node-1"}).str(), "node-1");

    EXPECT_EQ(nameOf(Object()), "");
    EXPECT_EQ(nameOf(Object{{"metadata", nullptr}}), "");
    EXPECT_EQ(namespaceOf(Object{{"metadata", {{"namespace", 5}}}}), "");
    EXPECT_EQ(nameOf(Object::array()), "");
}

TEST(ResourceInfoTest, Supports) {
    ResourceInfo ri;
    ri.verbs = {"get", "list", "watch"};
    EXPECT_TRUE(ri.supports("list"));
    EXPECT_FALSE(ri.supports("delete"));
}

TEST(WatchEventTest, TypeNames) {
    EXPECT_STREQ(toString(WatchEvent::Type::Added), "ADDED");
    EXPECT_STREQ(toString(WatchEvent::Type::Modified), "MODIFIED");
    EXPECT_STREQ(toString(WatchEvent::Type::Deleted), "DELETED");
    EXPECT_STREQ(toString(WatchEvent::Type::Bookmark), "BOOKMARK");
    EXPECT_STREQ(toString(WatchEvent::Type::Error), "ERROR");
}

TEST(ApiErrorTest, FromStatusBody) {
    std::string body = R"({"kind":"Status","apiVersion":"v1","status":"Failure",
        "message":"deployments.apps \"web\" already exists","reason":"AlreadyExists",
        "details":{"name":"web","group":"apps","kind":"deployments"},"code":409})";
    auto e = ApiError::fromResponse(409, body);
    EXPECT_EQ(e.code(), 409);
    EXPECT_EQ(e.reason(), "AlreadyExists");
    EXPECT_EQ(e.message(), "deployments.apps \"web\" already exists");
    EXPECT_EQ(e.details()["name"], "web");
    EXPECT_TRUE(e.isAlreadyExists());
    EXPECT_FALSE(e.isConflict());
    EXPECT_FALSE(e.isRetriable());
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos);

    auto conflict = ApiError::fromResponse(
        409,
        R"({"kind":"Status","reason":"Conflict","message":"the object has been modified","code":409})");
    EXPECT_TRUE(conflict.isConflict());
    EXPECT_FALSE(conflict.isAlreadyExists());
}

TEST(ApiErrorTest, NonStatusBodiesGetReasonFromCode) {
    struct Case {
        int code;
        const char* reason;
    } cases[] = {{400, "BadRequest"},    {401, "Unauthorized"},
                 {403, "Forbidden"},     {404, "NotFound"},
                 {409, "Conflict"},      {410, "Gone"},
                 {422, "Invalid"},       {429, "TooManyRequests"},
                 {500, "InternalError"}, {503, "ServiceUnavailable"},
                 {504, "Timeout"},       {418, "Unknown"}};
    for (const auto& c : cases) {
        auto e = ApiError::fromResponse(c.code, "<html>\n<b>upstream</b> failed</html>");
        EXPECT_EQ(e.code(), c.code);
        EXPECT_EQ(e.reason(), c.reason) << c.code;
        EXPECT_NE(e.message().find(std::to_string(c.code)), std::string::npos);
        EXPECT_NE(e.message().find("<b>upstream</b> failed"), std::string::npos) << e.message();
        EXPECT_EQ(e.message().find('\n'), std::string::npos);
    }
    std::string longBody(10000, 'x');
    EXPECT_LT(ApiError::fromResponse(500, longBody).message().size(), 400u);
    // Valid JSON that is not a Status is treated like any other body.
    EXPECT_EQ(ApiError::fromResponse(404, R"({"kind":"Pod"})").reason(), "NotFound");
    EXPECT_EQ(ApiError::fromResponse(404, "").message(), "HTTP 404");
}

TEST(ApiErrorTest, Predicates) {
    EXPECT_TRUE(ApiError::fromResponse(404, "").isNotFound());
    EXPECT_TRUE(ApiError::fromResponse(410, "").isGone());
    EXPECT_TRUE(ApiError(500, "Expired", "too old").isGone());
    EXPECT_TRUE(ApiError::fromResponse(422, "").isInvalid());
    EXPECT_TRUE(ApiError::fromResponse(401, "").isUnauthorized());
    EXPECT_TRUE(ApiError::fromResponse(403, "").isForbidden());
    EXPECT_TRUE(ApiError::fromResponse(429, "").isTooManyRequests());
    EXPECT_TRUE(ApiError::fromResponse(502, "").isServerError());
}

TEST(ApiErrorTest, Retriable) {
    EXPECT_TRUE(ApiError::fromResponse(429, "").isRetriable());
    EXPECT_TRUE(ApiError::fromResponse(500, "").isRetriable());
    EXPECT_TRUE(ApiError::fromResponse(503, "").isRetriable());
    EXPECT_TRUE(ApiError::fromResponse(504, "").isRetriable());
    EXPECT_FALSE(ApiError::fromResponse(501, "").isRetriable());
    EXPECT_FALSE(ApiError::fromResponse(404, "").isRetriable());
    EXPECT_FALSE(ApiError::fromResponse(409, "").isRetriable());
    EXPECT_TRUE(ApiError(408, "ServerTimeout", "slow").isRetriable());
}

TEST(ApiErrorTest, RetryAfter) {
    auto e = ApiError::fromResponse(429, "", std::chrono::seconds(3));
    ASSERT_TRUE(e.retryAfter());
    EXPECT_EQ(*e.retryAfter(), std::chrono::seconds(3));
    auto fromDetails = ApiError::fromResponse(
        429,
        R"({"kind":"Status","code":429,"reason":"TooManyRequests","details":{"retryAfterSeconds":2}})");
    ASSERT_TRUE(fromDetails.retryAfter());
    EXPECT_EQ(*fromDetails.retryAfter(), std::chrono::seconds(2));
    EXPECT_FALSE(ApiError::fromResponse(500, "").retryAfter());
}

TEST(ApiErrorTest, FromWatchStatus) {
    auto e = ApiError::fromStatus(nlohmann::json::parse(
        R"j({"kind":"Status","status":"Failure","message":"too old resource version: 5 (90)","reason":"Expired","code":410})j"));
    EXPECT_EQ(e.code(), 410);
    EXPECT_TRUE(e.isGone());
    EXPECT_EQ(e.reason(), "Expired");
    EXPECT_NE(e.message().find("too old"), std::string::npos);

    auto noCode =
        ApiError::fromStatus(nlohmann::json::parse(R"({"kind":"Status","reason":"Gone"})"));
    EXPECT_TRUE(noCode.isGone());
    EXPECT_EQ(ApiError::fromStatus(nlohmann::json("garbage")).code(), 500);
}

TEST(PathsTest, PercentEncoding) {
    EXPECT_EQ(percentEncode("abc-._~XYZ09"), "abc-._~XYZ09");
    EXPECT_EQ(percentEncode("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
    EXPECT_EQ(percentEncode("a/b&c?d#e+f%"), "a%2Fb%26c%3Fd%23e%2Bf%25");
    EXPECT_EQ(percentEncode("\xc3\xa9"), "%C3%A9");
}

TEST(PathsTest, QueryString) {
    QueryString q;
    EXPECT_EQ(q.str(), "");
    q.add("labelSelector", "app=web,env!=prod").add("fieldSelector", "").add("limit", "5");
    q.add("continue", "eyJ2IjoxfQ==");
    EXPECT_EQ(q.str(),
              "?labelSelector=app%3Dweb%2Cenv%21%3Dprod&limit=5&continue=eyJ2IjoxfQ%3D%3D");
    QueryString keep;
    keep.add("resourceVersion", "", true);
    EXPECT_EQ(keep.str(), "?resourceVersion=");
}

TEST(PathsTest, ResourcePaths) {
    ResourceInfo pods{{"", "v1", "Pod"}, "pods", true, {}, {}, true};
    ResourceInfo deploys{{"apps", "v1", "Deployment"}, "deployments", true, {}, {}, true};
    ResourceInfo nodes{{"", "v1", "Node"}, "nodes", false, {}, {}, true};
    EXPECT_EQ(resourcePath(pods, "default"), "/api/v1/namespaces/default/pods");
    EXPECT_EQ(resourcePath(pods, ""), "/api/v1/pods");
    EXPECT_EQ(resourcePath(pods, "ns", "p1"), "/api/v1/namespaces/ns/pods/p1");
    EXPECT_EQ(resourcePath(deploys, "ns", "web", "status"),
              "/apis/apps/v1/namespaces/ns/deployments/web/status");
    EXPECT_EQ(resourcePath(nodes, "ignored", "n1"), "/api/v1/nodes/n1");
    EXPECT_EQ(resourcePath(nodes, "", "", "status"), "/api/v1/nodes");
    EXPECT_EQ(groupVersionPath("", "v1"), "/api/v1");
    EXPECT_EQ(groupVersionPath("example.com", "v1beta1"), "/apis/example.com/v1beta1");
}

}  // namespace
}  // namespace sluice::kube
