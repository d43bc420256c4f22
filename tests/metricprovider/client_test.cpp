// PrometheusClient against a fake Prometheus HTTP endpoint on 127.0.0.1.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/certs.h"
#include "http/http_server.h"
#include "sluice/metricprovider/client.h"

namespace sluice::metricprovider {
namespace {

using Kind = canaryengine::MetricResult::Kind;
using testing::HttpRequest;
using testing::HttpServer;
using testing::HttpServerOptions;
using testing::ResponseWriter;

const std::string kVector99 =
    R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"99"]}]}})";

// Answers every request with the current scripted status and body, and remembers requests.
class FakePrometheus {
  public:
    explicit FakePrometheus(HttpServerOptions opts = {}) : server_(std::move(opts)) {
        server_.start([this](const HttpRequest& req, ResponseWriter& w) {
            int status;
            std::string body;
            bool slow;
            {
                std::lock_guard lock(mu_);
                requests_.push_back(req);
                status = status_;
                body = body_;
                slow = slow_;
            }
            if (slow) {
                // Held until the test releases it (bounded, so a broken test cannot hang).
                std::unique_lock lock(mu_);
                cv_.wait_for(lock, std::chrono::seconds(10), [this] { return released_; });
            }
            w.respond(status, {{"Content-Type", "application/json"}}, body);
        });
    }
    ~FakePrometheus() {
        release();
        server_.stop();
    }
    void reply(int status, std::string body) {
        std::lock_guard lock(mu_);
        status_ = status;
        body_ = std::move(body);
    }
    void setSlow(bool slow) {
        std::lock_guard lock(mu_);
        slow_ = slow;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            released_ = true;
        }
        cv_.notify_all();
    }
    std::vector<HttpRequest> requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }
    HttpRequest lastRequest() {
        std::lock_guard lock(mu_);
        return requests_.empty() ? HttpRequest{} : requests_.back();
    }
    std::string url() const { return server_.url(); }
    void stop() {
        release();
        server_.stop();
    }

  private:
    HttpServer server_;
    std::mutex mu_;
    std::condition_variable cv_;
    int status_ = 200;
    std::string body_ = kVector99;
    bool slow_ = false;
    bool released_ = false;
    std::vector<HttpRequest> requests_;
};

ClientOptions optionsFor(const std::string& url) {
    ClientOptions o;
    o.address = url;
    o.timeout = std::chrono::seconds(10);
    return o;
}

TEST(PrometheusClient, SendsTheQueryEncodedToApiV1Query) {
    FakePrometheus fake;
    PrometheusClient client(optionsFor(fake.url()));
    std::string query = "sum(rate(x{a=\"b c\",d=~\"5.*\"}[1m])) + 1 & #%?/\n\t/ 2";
    auto r = client.query(query);
    ASSERT_EQ(r.kind, Kind::Value) << r.reason;
    EXPECT_DOUBLE_EQ(r.value, 99);
    HttpRequest req = fake.lastRequest();
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.path, "/api/v1/query");
    EXPECT_EQ(req.queryParam("query"), "sum(rate(x{a=\"b c\",d=~\"5.*\"}[1m])) + 1 & #%?/ / 2");
    EXPECT_EQ(req.query.size(), 1u) << req.target;
    EXPECT_EQ(req.header("authorization"), "");
    EXPECT_EQ(req.header("accept"), "application/json");
}

TEST(PrometheusClient, KeepsTheAddressPathPrefix) {
    FakePrometheus fake;
    for (std::string suffix : {"/prometheus", "/prometheus/"}) {
        PrometheusClient client(optionsFor(fake.url() + suffix));
        auto r = client.query("up");
        ASSERT_EQ(r.kind, Kind::Value) << r.reason;
        EXPECT_EQ(fake.lastRequest().path, "/prometheus/api/v1/query");
    }
    PrometheusClient root(optionsFor(fake.url() + "/"));
    ASSERT_EQ(root.query("up").kind, Kind::Value);
    EXPECT_EQ(fake.lastRequest().path, "/api/v1/query");
}

TEST(PrometheusClient, ResultKindsThroughHttp) {
    FakePrometheus fake;
    PrometheusClient client(optionsFor(fake.url()));
    fake.reply(200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"0.25"]}})");
    auto r = client.query("scalar(x)");
    ASSERT_EQ(r.kind, Kind::Value) << r.reason;
    EXPECT_DOUBLE_EQ(r.value, 0.25);

    fake.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
    EXPECT_EQ(client.query("x").kind, Kind::NoData);

    fake.reply(
        200,
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}})");
    r = client.query("x");
    EXPECT_EQ(r.kind, Kind::NoData);
    EXPECT_NE(r.reason.find("NaN"), std::string::npos) << r.reason;

    fake.reply(400, R"({"status":"error","errorType":"bad_data","error":"1:5: parse error"})");
    r = client.query("x{");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("bad_data: 1:5: parse error"), std::string::npos) << r.reason;

    fake.reply(500, "internal error");
    r = client.query("x");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("HTTP 500"), std::string::npos) << r.reason;

    fake.reply(200, "<html>login page</html>");
    EXPECT_EQ(client.query("x").kind, Kind::QueryError);
}

TEST(PrometheusClient, EmptyQueryIsAnErrorWithoutARequest) {
    FakePrometheus fake;
    PrometheusClient client(optionsFor(fake.url()));
    EXPECT_EQ(client.query(" \n ").kind, Kind::QueryError);
    EXPECT_TRUE(fake.requests().empty());
}

TEST(PrometheusClient, SlowServerTimesOut) {
    FakePrometheus fake;
    fake.setSlow(true);
    ClientOptions o = optionsFor(fake.url());
    o.timeout = std::chrono::milliseconds(300);
    PrometheusClient client(o);
    auto r = client.query("up");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find("timed out after 300ms"), std::string::npos) << r.reason;
    fake.setSlow(false);
    fake.release();
    // The client stays usable after a timeout.
    auto again = client.query("up");
    EXPECT_EQ(again.kind, Kind::Value) << again.reason;
}

TEST(PrometheusClient, UnreachableServerIsAQueryError) {
    std::string url;
    {
        FakePrometheus fake;
        url = fake.url();
        fake.stop();
    }
    PrometheusClient client(optionsFor(url));
    auto r = client.query("up");
    EXPECT_EQ(r.kind, Kind::QueryError);
    EXPECT_NE(r.reason.find(url), std::string::npos) << r.reason;
    EXPECT_FALSE(client.health().ok);
}

TEST(PrometheusClient, BearerToken) {
    FakePrometheus fake;
    ClientOptions o = optionsFor(fake.url());
    o.credentials.bearerToken = "s3cr3t-token";
    o.credentials.username = "ignored";
    PrometheusClient client(o);
    ASSERT_EQ(client.query("up").kind, Kind::Value);
    EXPECT_EQ(fake.lastRequest().header("authorization"), "Bearer s3cr3t-token");
}

TEST(PrometheusClient, BasicAuth) {
    FakePrometheus fake;
    ClientOptions o = optionsFor(fake.url());
    o.credentials.username = "admin";
    o.credentials.password = "p@ss:word";
    PrometheusClient client(o);
    ASSERT_EQ(client.query("up").kind, Kind::Value);
    // base64("admin:p@ss:word")
    EXPECT_EQ(fake.lastRequest().header("authorization"), "Basic YWRtaW46cEBzczp3b3Jk");
}

TEST(PrometheusClient, HealthRunsVectorOne) {
    FakePrometheus fake;
    PrometheusClient client(optionsFor(fake.url()));
    fake.reply(
        200,
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}})");
    auto h = client.health();
    EXPECT_TRUE(h.ok) << h.message;
    EXPECT_EQ(fake.lastRequest().queryParam("query"), "vector(1)");

    fake.reply(200, kVector99);
    h = client.health();
    EXPECT_FALSE(h.ok);
    EXPECT_NE(h.message.find("instead of 1"), std::string::npos) << h.message;

    fake.reply(401, "Unauthorized");
    h = client.health();
    EXPECT_FALSE(h.ok);
    EXPECT_NE(h.message.find("HTTP 401"), std::string::npos) << h.message;
}

TEST(PrometheusClient, TlsVerificationAndInsecureSkipVerify) {
    auto ca = testing::generateCa("test-ca");
    auto cert = testing::issueCertificate(ca, "prometheus", {"127.0.0.1"}, false);
    HttpServerOptions so;
    so.tls = true;
    so.certPem = cert.certPem;
    so.keyPem = cert.keyPem;
    FakePrometheus fake(so);
    ASSERT_EQ(fake.url().rfind("https://", 0), 0u);

    PrometheusClient verifying(optionsFor(fake.url()));
    auto r = verifying.query("up");
    EXPECT_EQ(r.kind, Kind::QueryError) << "an unknown CA must not be trusted";

    ClientOptions o = optionsFor(fake.url());
    o.insecureSkipVerify = true;
    PrometheusClient insecure(o);
    r = insecure.query("up");
    ASSERT_EQ(r.kind, Kind::Value) << r.reason;
    EXPECT_DOUBLE_EQ(r.value, 99);
}

TEST(PrometheusClient, ConcurrentQueries) {
    FakePrometheus fake;
    PrometheusClient client(optionsFor(fake.url()));
    std::atomic<int> values{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i)
                if (client.query("up").kind == Kind::Value) ++values;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(values.load(), 20);
}

TEST(PrometheusClient, RejectsBadOptions) {
    for (std::string address : {"", "prometheus:9090", "ftp://host", "http://"}) {
        ClientOptions o;
        o.address = address;
        EXPECT_THROW(PrometheusClient{o}, std::invalid_argument) << address;
    }
    ClientOptions o;
    o.address = "http://127.0.0.1:9090";
    o.timeout = std::chrono::milliseconds(0);
    EXPECT_THROW(PrometheusClient{o}, std::invalid_argument);
}

}  // namespace
}  // namespace sluice::metricprovider
