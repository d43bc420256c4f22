// The controller's HTTP server over real loopback sockets.
#include "sluice/server/http_server.h"

#include <gtest/gtest.h>

#include <cpprest/http_client.h>
#include <pplx/threadpool.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <vector>

#include "process/process.h"

namespace sluice::server {
namespace {

namespace http = web::http;

struct Reply {
    int status = 0;
    std::string contentType;
    std::string body;
};

Reply call(int port, const std::string& method, const std::string& path,
           const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    http::client::http_client client("http://127.0.0.1:" + std::to_string(port));
    http::http_request req(method);
    req.set_request_uri(path);
    for (const auto& [k, v] : headers) req.headers().add(k, v);
    if (!body.empty()) {
        // Bytes, not cpprest's std::string overload (UBSan: char buffer used as uint8_t).
        std::vector<uint8_t> bytes(body.begin(), body.end());
        auto size = bytes.size();
        req.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                     "application/json");
    }
    auto resp = client.request(req).get();
    return {resp.status_code(), resp.headers().content_type(), resp.extract_utf8string(true).get()};
}

TEST(ListenAddress, GoStyleAddressesAreAccepted) {
    EXPECT_EQ(normaliseListenAddress(":8080"), "0.0.0.0:8080");
    EXPECT_EQ(normaliseListenAddress("127.0.0.1:9"), "127.0.0.1:9");
    EXPECT_EQ(normaliseListenAddress("0"), "");
    EXPECT_EQ(normaliseListenAddress(""), "");
    EXPECT_THROW(normaliseListenAddress("8080"), std::invalid_argument);
    EXPECT_THROW(normaliseListenAddress(":http"), std::invalid_argument);
    EXPECT_THROW(normaliseListenAddress(":70000"), std::invalid_argument);
}

TEST(HttpServer, RoutesByPathAndMethodOverLoopback) {
    int port = testing::freeLoopbackPort();
    std::string seenBody, seenHeader;
    HttpServer server(
        "127.0.0.1:" + std::to_string(port),
        {{"GET", "/healthz",
          [](const Request&) {
              return Response{200, "text/plain", "ok\n"};
          }},
         {"POST", "/api/webhook",
          [&](const Request& r) {
              seenBody = r.body;
              seenHeader = r.headers.count("x-github-event") ? r.headers.at("x-github-event") : "";
              return Response{202, "application/json", R"({"queued":1})"};
          }},
         {"GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("kaput"); }}});
    server.start();

    auto health = call(port, "GET", "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");
    EXPECT_EQ(health.contentType, "text/plain");

    auto hook = call(port, "POST", "/api/webhook", R"({"ref":"refs/heads/main"})",
                     {{"X-GitHub-Event", "push"}});
    EXPECT_EQ(hook.status, 202);
    EXPECT_EQ(seenBody, R"({"ref":"refs/heads/main"})");
    EXPECT_EQ(seenHeader, "push") << "header names are lower-cased";

    EXPECT_EQ(call(port, "GET", "/nowhere").status, 404);
    EXPECT_EQ(call(port, "GET", "/api/webhook").status, 405);
    auto boom = call(port, "GET", "/boom");
    EXPECT_EQ(boom.status, 500);
    EXPECT_NE(boom.body.find("kaput"), std::string::npos);
    server.stop();
}

TEST(HttpServer, OversizedBodiesAreRefused) {
    int port = testing::freeLoopbackPort();
    bool called = false;
    HttpServer server("127.0.0.1:" + std::to_string(port),
                      {{"POST", "/api/webhook",
                        [&](const Request&) {
                            called = true;
                            return Response{};
                        }}},
                      1024);
    server.start();
    EXPECT_EQ(call(port, "POST", "/api/webhook", std::string(4096, 'x')).status, 413);
    EXPECT_FALSE(called);
    EXPECT_EQ(call(port, "POST", "/api/webhook", std::string(512, 'x')).status, 200);
}

TEST(HttpServer, APortInUseIsAClearError) {
    int port = testing::freeLoopbackPort();
    HttpServer first("127.0.0.1:" + std::to_string(port), {});
    first.start();
    HttpServer second("127.0.0.1:" + std::to_string(port), {});
    try {
        second.start();
        FAIL() << "second listener on the same port started";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
    }
}

// A handler that blocks on an HTTP call (the webhook receiver's API requests) must not hold
// one of cpprest's I/O threads, however few the process runs. Two I/O threads and two requests
// whose handlers both call this server again: when handlers ran on cpprest's threads, both
// threads were held and the inner requests were never served. (Two, not one: closing the
// listener itself blocks an I/O thread until its connections are torn down on another.)
TEST(HttpServer, HandlersMayBlockOnHttpWhileEveryIoThreadIsBusy) {
    constexpr int kIoThreads = 2;
    try {
        crossplat::threadpool::initialize_with_threads(kIoThreads);
    } catch (const std::exception&) {
        GTEST_SKIP() << "cpprest's thread pool was started by an earlier test of this process "
                        "(ctest runs each test alone)";
    }
    std::mutex mu;
    std::condition_variable cv;
    int outerStarted = 0;
    int port = testing::freeLoopbackPort();
    auto outer = [&](const Request&) {
        {
            // Both outer handlers run at once before either calls in.
            std::unique_lock lock(mu);
            ++outerStarted;
            cv.notify_all();
            cv.wait_for(lock, std::chrono::seconds(5), [&] { return outerStarted == kIoThreads; });
        }
        return Response{200, "", "out+" + call(port, "GET", "/inner").body};
    };
    HttpServer server("127.0.0.1:" + std::to_string(port), {{"GET", "/inner",
                                                             [](const Request&) {
                                                                 return Response{200, "", "in"};
                                                             }},
                                                            {"GET", "/outer", outer}});
    server.start();
    std::vector<std::future<Reply>> calls;
    for (int i = 0; i < kIoThreads; ++i)
        calls.push_back(
            std::async(std::launch::async, [port] { return call(port, "GET", "/outer"); }));
    for (auto& c : calls) {
        if (c.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
            ADD_FAILURE() << "a nested request never completed: the handlers hold the I/O threads";
            std::fflush(nullptr);
            std::quick_exit(1);  // the stuck threads cannot be joined
        }
        EXPECT_EQ(c.get().body, "out+in");
    }
    EXPECT_EQ(outerStarted, kIoThreads);
    server.stop();
}

}  // namespace
}  // namespace sluice::server
