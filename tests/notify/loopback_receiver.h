#pragma once
// A loopback HTTP receiver for notification tests (tests/support/http): records each request
// and answers as the script says, as a chat service or webhook would. Header-only, so tests of
// other directories (tests/appcontroller) can use it with sluice_testhttp linked.
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "http/http_server.h"

namespace sluice::notifytest {

using testing::HttpRequest;
using testing::ResponseWriter;

class Receiver {
  public:
    // `n` counts requests from 1.
    using Reply = std::function<void(const HttpRequest&, ResponseWriter&, int n)>;
    explicit Receiver(Reply reply, testing::HttpServerOptions options = {})
        : server_(std::move(options)), reply_(std::move(reply)) {
        server_.start([this](const HttpRequest& req, ResponseWriter& w) {
            int n;
            {
                std::lock_guard lock(mu_);
                requests_.push_back(req);
                n = static_cast<int>(requests_.size());
            }
            reply_(req, w, n);
        });
    }
    std::string url() const { return server_.url(); }
    std::vector<HttpRequest> requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }

  private:
    testing::HttpServer server_;
    Reply reply_;
    std::mutex mu_;
    std::vector<HttpRequest> requests_;
};

// Always the same answer.
inline Receiver::Reply answer(int status, std::string body = "ok",
                              std::map<std::string, std::string> headers = {}) {
    return [=](const HttpRequest&, ResponseWriter& w, int) { w.respond(status, headers, body); };
}

}  // namespace sluice::notifytest
