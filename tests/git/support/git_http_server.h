#pragma once
// A minimal HTTP/1.1 server on 127.0.0.1 that runs `git http-backend` as a CGI for every
// request, with optional Basic auth. One connection at a time, "Connection: close".
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/util/base64.h"

namespace sluice::testing {

class GitHttpServer {
  public:
    // Serves repositories under projectRoot. With a non-empty user, every request needs
    // "Authorization: Basic base64(user:password)", else 401.
    GitHttpServer(std::filesystem::path projectRoot, std::string user = "",
                  std::string password = "");
    ~GitHttpServer();
    GitHttpServer(const GitHttpServer&) = delete;
    GitHttpServer& operator=(const GitHttpServer&) = delete;

    int port() const { return port_; }
    std::string url(const std::string& repoName) const;  // http://127.0.0.1:port/repoName

    // Authorization header values received, in order ("" for requests without one).
    std::vector<std::string> authorizations() const;
    int requests() const;

  private:
    void serve();
    void handle(int fd);

    std::filesystem::path root_;
    std::string user_, password_;
    int listenFd_ = -1;
    int stopPipe_[2] = {-1, -1};
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mu_;
    std::vector<std::string> authorizations_;
    int requests_ = 0;
};

// Standard base64, as Authorization headers in tests need it.
using sluice::base64Encode;

}  // namespace sluice::testing
