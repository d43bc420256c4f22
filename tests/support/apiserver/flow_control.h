#pragma once
// API Priority and Fairness as a client sees it: every classified response names its
// FlowSchema and priority level in X-Kubernetes-PF-* headers, and with a limited number of
// seats a request waits in a queue for one, or gets 429 + Retry-After when the queue is full.
// One priority level stands for all (kube-apiserver has several, per FlowSchema).
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "http/http_server.h"

namespace sluice::testing {

class FlowControl {
  public:
    // seats <= 0: unlimited (headers only).
    FlowControl(int seats, int queueLength) : seats_(seats), queueLength_(queueLength) {}

    class Seat {
      public:
        explicit Seat(FlowControl* owner) : owner_(owner) {}
        Seat(Seat&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
        Seat& operator=(Seat&&) = delete;
        ~Seat();

      private:
        FlowControl* owner_;
    };
    // A seat, after waiting in the queue if need be; nullopt when the queue is full.
    std::optional<Seat> admit();

    // The headers kube-apiserver adds to every request APF classified.
    static const std::map<std::string, std::string>& headers();

  private:
    const int seats_;
    const int queueLength_;
    std::mutex mu_;
    std::condition_variable cv_;
    int busy_ = 0;
    int queued_ = 0;
};

// Adds FlowControl::headers() to every response written through it.
class ApfHeaderWriter : public ResponseWriter {
  public:
    explicit ApfHeaderWriter(ResponseWriter& inner) : inner_(inner) {}
    void respond(int status, const std::map<std::string, std::string>& headers,
                 const std::string& body) override;
    void startStream(int status, const std::map<std::string, std::string>& headers) override;
    bool writeChunk(const std::string& data) override { return inner_.writeChunk(data); }
    bool alive() const override { return inner_.alive(); }

  private:
    static std::map<std::string, std::string> with(std::map<std::string, std::string> headers);
    ResponseWriter& inner_;
};

}  // namespace sluice::testing
