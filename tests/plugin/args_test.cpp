#include "args.h"

#include <gtest/gtest.h>

namespace sluice::plugin {
namespace {

using namespace std::chrono_literals;

TEST(PluginArgs, FlagsMayComeAnywhereInKubectlForms) {
    Invocation inv = parseArgs({"app", "-n", "team", "sync", "--revision=v2", "guestbook",
                                "--prune", "--sync-option", "CreateNamespace=true",
                                "--sync-option=Validate=false", "--kubeconfig", "/tmp/kc",
                                "--context=prod", "--dry-run=false", "--wait", "--timeout", "90s"});
    EXPECT_EQ(inv.words, (std::vector<std::string>{"app", "sync", "guestbook"}));
    EXPECT_EQ(inv.ns, "team");
    EXPECT_EQ(inv.revision, "v2");
    EXPECT_TRUE(inv.prune);
    EXPECT_FALSE(inv.dryRun);
    EXPECT_TRUE(inv.wait);
    EXPECT_EQ(inv.timeout, 90s);
    EXPECT_EQ(inv.kubeconfig, "/tmp/kc");
    EXPECT_EQ(inv.context, "prod");
    EXPECT_EQ(inv.syncOptions,
              (std::vector<std::string>{"CreateNamespace=true", "Validate=false"}));
    EXPECT_TRUE(inv.given.count("dry-run"));
    EXPECT_FALSE(inv.given.count("hard"));
}

TEST(PluginArgs, ShorthandForms) {
    EXPECT_EQ(parseArgs({"app", "list", "-ojson"}).output, "json");
    EXPECT_EQ(parseArgs({"app", "list", "-o=yaml"}).output, "yaml");
    EXPECT_EQ(parseArgs({"app", "list", "-o", "wide"}).output, "wide");
    EXPECT_EQ(parseArgs({"app", "list", "--output=name"}).output, "name");
    EXPECT_EQ(parseArgs({"app", "list", "-nteam"}).ns, "team");
    EXPECT_EQ(parseArgs({"app", "list", "-n=team"}).ns, "team");
    Invocation a = parseArgs({"canary", "list", "-A"});
    EXPECT_TRUE(a.allNamespaces);
    EXPECT_TRUE(parseArgs({"-h"}).help);
    EXPECT_TRUE(parseArgs({"app", "list", "--help"}).help);
    // Combined boolean shorthands, then one taking a value.
    Invocation c = parseArgs({"app", "list", "-Aojson"});
    EXPECT_TRUE(c.allNamespaces);
    EXPECT_EQ(c.output, "json");
}

TEST(PluginArgs, DoubleDashEndsFlags) {
    Invocation inv = parseArgs({"app", "get", "--", "--weird-name"});
    EXPECT_EQ(inv.words, (std::vector<std::string>{"app", "get", "--weird-name"}));
}

TEST(PluginArgs, Errors) {
    EXPECT_THROW(parseArgs({"app", "list", "--frobnicate"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "list", "-x"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "list", "-n"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "sync", "x", "--revision"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "sync", "x", "--timeout", "soon"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "sync", "x", "--prune=maybe"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "list", "-n", "a", "-A"}), UsageError);
    EXPECT_THROW(parseArgs({"app", "diff", "x", "--color=sometimes"}), UsageError);
    try {
        parseArgs({"app", "list", "--frobnicate"});
    } catch (const UsageError& e) {
        EXPECT_STREQ(e.what(), "unknown flag: --frobnicate");
    }
}

TEST(PluginArgs, PerCommandFlagsAndOutputs) {
    Invocation inv = parseArgs({"app", "list", "--prune", "-n", "x"});
    EXPECT_THROW(checkFlags(inv, "app list", {}), UsageError);
    EXPECT_NO_THROW(checkFlags(inv, "app sync", {"prune"}));
    Invocation out = parseArgs({"app", "sync", "x", "-o", "json"});
    EXPECT_THROW(checkOutput(out, "app sync", {}), UsageError);
    EXPECT_NO_THROW(checkOutput(out, "app get", {"json", "yaml"}));
    Invocation table = parseArgs({"app", "get", "x", "-o", "table"});
    EXPECT_THROW(checkOutput(table, "app get", {"json", "yaml"}), UsageError);
}

}  // namespace
}  // namespace sluice::plugin
