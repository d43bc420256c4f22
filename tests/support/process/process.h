#pragma once
// Runs a program as a child process for tests: output captured to files, signals, bounded waits.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

class ChildProcess {
  public:
    // Starts argv[0] (searched in PATH when it has no slash) with extra environment variables;
    // stdout and stderr go to files in a fresh temporary directory.
    ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
    ~ChildProcess();  // kills (SIGKILL) if still running, removes the output files
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    int pid() const { return pid_; }
    void signal(int sig);
    // Exit code (128+signal when killed by one), or nullopt if still running after timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    bool running();

    std::string stdoutText() const;
    std::string stderrText() const;
    // Polls stderr+stdout until text appears; false on timeout or when the process exited first.
    bool waitForOutput(const std::string& text, std::chrono::milliseconds timeout);

  private:
    int pid_ = -1;
    std::optional<int> exitCode_;
    std::string dir_;
};

// Runs to completion (bounded by timeout, then SIGKILL) and returns {exit code, stdout, stderr}.
struct RunResult {
    int exitCode = -1;
    std::string out;
    std::string err;
};
RunResult runProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60),
                     const std::string& stdinText = "");

// A loopback TCP port that was free a moment ago (bind to port 0, read it, close): for servers
// that must be told their port, and for "nothing listens here" tests.
int freeLoopbackPort();

}  // namespace sluice::testing
