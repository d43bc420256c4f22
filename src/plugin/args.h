#pragma once
// Command-line parsing for kubectl-sluice, in kubectl's (pflag's) style: flags may come before,
// between or after the command words; "--flag value", "--flag=value", "-n value", "-nvalue",
// "-o=json"; boolean flags take an optional "=true|false"; "--" ends the flags.
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::plugin {

// Bad command line: exit code 2 with the message and a hint to use --help.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Invocation {
    // Command words and positional arguments in order: {"app", "rollback", "guestbook", "3"}.
    std::vector<std::string> words;

    // Global flags (kubectl's names).
    std::string ns;                           // -n/--namespace ("" = the context's)
    bool allNamespaces = false;               // -A/--all-namespaces
    std::string kubeconfig;                   // --kubeconfig
    std::string context;                      // --context
    std::string output;                       // -o/--output: json|yaml|wide|name
    std::string controlNamespace = "sluice";  // --control-namespace (repository Secrets)
    std::string repoCacheDir;                 // --repo-cache-dir (app diff's git clones)
    std::string color = "auto";               // --color auto|always|never
    bool help = false;                        // -h/--help

    // Command flags.
    std::string revision;                       // --revision (app sync, app diff)
    bool prune = false;                         // --prune
    bool dryRun = false;                        // --dry-run
    std::vector<std::string> syncOptions;       // --sync-option (repeatable)
    bool wait = false;                          // --wait
    std::chrono::milliseconds timeout{300000};  // --timeout (for --wait)
    bool hard = false;                          // --hard (app refresh)
    bool refresh = false;                       // --refresh (app diff: resolve the target now)

    // Long names of the flags given (without dashes), for per-command validation.
    std::set<std::string> given;
};

// Throws UsageError for unknown flags, missing values and malformed values.
Invocation parseArgs(const std::vector<std::string>& args);

// Throws UsageError naming the first flag in inv.given that is neither global nor in allowed.
void checkFlags(const Invocation& inv, const std::string& command,
                const std::set<std::string>& allowed);

// Throws UsageError unless inv.output is "" or one of allowed.
void checkOutput(const Invocation& inv, const std::string& command,
                 const std::set<std::string>& allowed);

}  // namespace sluice::plugin
