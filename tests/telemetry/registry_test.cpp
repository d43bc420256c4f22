// The metrics registry, read back through the strict exposition parser.
#include "sluice/telemetry/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <thread>

#include "metrics/exposition_parser.h"

namespace sluice::telemetry {
namespace {

using testing::parseExposition;

TEST(Registry, CountersGaugesAndHistogramsRoundTripThroughTheTextFormat) {
    Registry r;
    auto& reconciles = r.counter("sluice_reconcile_total", "Reconciles by controller and result.",
                                 {"controller", "result"});
    auto& weight = r.gauge("sluice_canary_weight", "Canary traffic weight.", {"namespace", "name"});
    auto& duration = r.histogram("sluice_reconcile_duration_seconds", "Reconcile duration.",
                                 {"controller"}, {0.1, 1});
    reconciles.inc({"application", "success"});
    reconciles.inc({"application", "success"}, 2);
    reconciles.inc({"application", "error"});
    weight.set({"demo", "podinfo"}, 30);
    duration.observe({"application"}, 0.05);
    duration.observe({"application"}, 0.5);
    duration.observe({"application"}, 7);

    auto page = parseExposition(r.exposition());
    EXPECT_EQ(page.families.at("sluice_reconcile_total").type, "counter");
    EXPECT_EQ(page.families.at("sluice_reconcile_total").help,
              "Reconciles by controller and result.");
    EXPECT_EQ(page.families.at("sluice_reconcile_duration_seconds").type, "histogram");
    EXPECT_EQ(page.value("sluice_reconcile_total", {{"result", "success"}}), 3);
    EXPECT_EQ(page.value("sluice_reconcile_total", {{"result", "error"}}), 1);
    EXPECT_EQ(page.value("sluice_canary_weight", {{"namespace", "demo"}, {"name", "podinfo"}}), 30);
    // Buckets are cumulative and end with +Inf == _count.
    EXPECT_EQ(page.value("sluice_reconcile_duration_seconds_bucket", {{"le", "0.1"}}), 1);
    EXPECT_EQ(page.value("sluice_reconcile_duration_seconds_bucket", {{"le", "1"}}), 2);
    EXPECT_EQ(page.value("sluice_reconcile_duration_seconds_bucket", {{"le", "+Inf"}}), 3);
    EXPECT_EQ(page.value("sluice_reconcile_duration_seconds_count"), 3);
    EXPECT_DOUBLE_EQ(*page.value("sluice_reconcile_duration_seconds_sum"), 7.55);
}

TEST(Registry, LabelValuesAreEscaped) {
    Registry r;
    auto& g = r.gauge("sluice_test", "Help with a \\ backslash\nand a newline.", {"v"});
    g.set({"quote \" backslash \\ newline \n end"}, 1);
    std::string text = r.exposition();
    EXPECT_NE(text.find(R"(v="quote \" backslash \\ newline \n end")"), std::string::npos) << text;
    EXPECT_NE(text.find("# HELP sluice_test Help with a \\\\ backslash\\nand a newline."),
              std::string::npos)
        << text;
    auto page = parseExposition(text);
    EXPECT_EQ(page.samples.at(0).labels.at("v"), "quote \" backslash \\ newline \n end");
}

TEST(Registry, UnlabelledFamiliesShowZeroBeforeTheFirstUpdate) {
    Registry r;
    r.counter("sluice_a_total", "a");
    r.histogram("sluice_b_seconds", "b", {}, {1});
    auto page = parseExposition(r.exposition());
    EXPECT_EQ(page.value("sluice_a_total"), 0);
    EXPECT_EQ(page.value("sluice_b_seconds_count"), 0);
    EXPECT_EQ(page.value("sluice_b_seconds_bucket", {{"le", "+Inf"}}), 0);
}

TEST(Registry, GaugeSeriesCanBeRemoved) {
    Registry r;
    auto& g = r.gauge("sluice_app_info", "x", {"namespace", "name", "status"});
    g.set({"a", "one", "Synced"}, 1);
    g.set({"a", "two", "Synced"}, 1);
    g.set({"b", "one", "Synced"}, 1);
    g.removeMatching({"a", "one"});
    EXPECT_FALSE(g.has({"a", "one", "Synced"}));
    EXPECT_TRUE(g.has({"a", "two", "Synced"}));
    g.remove({"b", "one", "Synced"});
    EXPECT_EQ(parseExposition(r.exposition()).all("sluice_app_info").size(), 1u);
}

TEST(Registry, CollectorsRunBeforeEachExposition) {
    Registry r;
    auto& depth = r.gauge("sluice_workqueue_depth", "depth", {"name"});
    int calls = 0;
    r.addCollector([&] { depth.set({"application"}, ++calls); });
    EXPECT_EQ(parseExposition(r.exposition()).value("sluice_workqueue_depth"), 1);
    EXPECT_EQ(parseExposition(r.exposition()).value("sluice_workqueue_depth"), 2);
}

TEST(Registry, MisuseIsRejected) {
    Registry r;
    auto& c = r.counter("sluice_x_total", "x", {"a"});
    EXPECT_THROW(r.counter("sluice_x_total", "again"), std::invalid_argument);
    EXPECT_THROW(r.gauge("bad-name", "x"), std::invalid_argument);
    EXPECT_THROW(r.gauge("sluice_ok", "x", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("sluice_h", "x", {"le"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("sluice_h2", "x", {}, {1, 1}), std::invalid_argument);
    EXPECT_THROW(c.inc({}), std::invalid_argument);
    EXPECT_THROW(c.inc({"v"}, -1), std::invalid_argument);
}

TEST(Registry, ValuesReadBackAsPrometheusReadsThem) {
    Registry r;
    auto& g = r.gauge("sluice_value", "v", {"v"});
    for (double v :
         {3.0, -2.0, 0.25, 0.1, 1e-7, 2.5e15, 123456789.0, double(INFINITY), double(-INFINITY)})
        g.set({std::to_string(v)}, v);
    g.set({"nan"}, NAN);
    auto page = parseExposition(r.exposition());
    for (double v :
         {3.0, -2.0, 0.25, 0.1, 1e-7, 2.5e15, 123456789.0, double(INFINITY), double(-INFINITY)})
        EXPECT_EQ(page.value("sluice_value", {{"v", std::to_string(v)}}), v) << v;
    EXPECT_TRUE(std::isnan(*page.value("sluice_value", {{"v", "nan"}})));
    EXPECT_EQ(exponentialBuckets(0.01, 2, 3), (std::vector<double>{0.01, 0.02, 0.04}));
}

// A page with every kind of family, read line by line: each family once, with HELP and TYPE
// before its samples, histogram buckets cumulative and ascending, and the values as updated.
TEST(Registry, ExpositionIsValidTextFormatWithTheRightValues) {
    Registry r;
    auto& requests = r.counter("sluice_kube_requests_total", "Requests.", {"verb", "code"});
    auto& unused = r.counter("sluice_unused_total", "Never incremented.", {"reason"});
    auto& leader = r.gauge("sluice_leader", "Leading.");
    auto& depth = r.gauge("sluice_workqueue_depth", "Depth.", {"controller"});
    auto& latency = r.histogram("sluice_kube_request_duration_seconds", "Latency.", {"verb"});
    auto& fetch = r.histogram("sluice_git_fetch_duration_seconds", "Fetch.", {},
                              exponentialBuckets(0.01, 2.5, 10));
    (void)unused;
    requests.inc({"get", "200"}, 5);
    requests.inc({"apply", "409"});
    leader.set(1);
    depth.set({"application"}, 4);
    depth.add({"application"}, -1.5);
    depth.set({"canary"}, 0);
    for (double v : {0.003, 0.02, 0.02, 0.3, 42.0}) latency.observe({"list"}, v);
    fetch.observe(0.5);

    const std::string text = r.exposition();
    auto page = parseExposition(text);  // throws on any malformed line

    // Families in registration order, one HELP and one TYPE line each, samples grouped.
    std::vector<std::string> order;
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line)) {
        ASSERT_FALSE(line.empty());
        if (line.rfind("# TYPE ", 0) == 0) order.push_back(line.substr(7, line.find(' ', 7) - 7));
    }
    EXPECT_EQ(order, (std::vector<std::string>{"sluice_kube_requests_total", "sluice_unused_total",
                                               "sluice_leader", "sluice_workqueue_depth",
                                               "sluice_kube_request_duration_seconds",
                                               "sluice_git_fetch_duration_seconds"}));
    EXPECT_EQ(page.families.at("sluice_unused_total").type, "counter");
    EXPECT_EQ(page.families.at("sluice_unused_total").help, "Never incremented.");
    EXPECT_TRUE(page.all("sluice_unused_total").empty());
    EXPECT_EQ(page.families.at("sluice_leader").type, "gauge");
    EXPECT_EQ(page.families.at("sluice_git_fetch_duration_seconds").type, "histogram");

    EXPECT_EQ(page.value("sluice_kube_requests_total", {{"verb", "get"}, {"code", "200"}}), 5);
    EXPECT_EQ(page.value("sluice_kube_requests_total", {{"verb", "apply"}, {"code", "409"}}), 1);
    EXPECT_EQ(page.all("sluice_kube_requests_total").size(), 2u);
    EXPECT_EQ(page.value("sluice_leader"), 1);
    EXPECT_EQ(page.value("sluice_workqueue_depth", {{"controller", "application"}}), 2.5);
    EXPECT_EQ(page.value("sluice_workqueue_depth", {{"controller", "canary"}}), 0);

    // Default buckets: every bound, cumulative, ascending, ending with +Inf == _count.
    auto buckets = page.all("sluice_kube_request_duration_seconds_bucket", {{"verb", "list"}});
    ASSERT_EQ(buckets.size(), defaultBuckets().size() + 1);
    for (size_t i = 0; i < defaultBuckets().size(); ++i)
        EXPECT_EQ(std::stod(buckets[i].labels.at("le")), defaultBuckets()[i]);
    EXPECT_EQ(buckets.back().labels.at("le"), "+Inf");
    for (size_t i = 1; i < buckets.size(); ++i) EXPECT_GE(buckets[i].value, buckets[i - 1].value);
    auto bucket = [&](const std::string& le) {
        return page.value("sluice_kube_request_duration_seconds_bucket",
                          {{"verb", "list"}, {"le", le}});
    };
    EXPECT_EQ(bucket("0.005"), 1);
    EXPECT_EQ(bucket("0.01"), 1);
    EXPECT_EQ(bucket("0.025"), 3);
    EXPECT_EQ(bucket("0.25"), 3);
    EXPECT_EQ(bucket("0.5"), 4);
    EXPECT_EQ(bucket("10"), 4);
    EXPECT_EQ(bucket("+Inf"), 5);
    EXPECT_EQ(page.value("sluice_kube_request_duration_seconds_count", {{"verb", "list"}}), 5);
    EXPECT_DOUBLE_EQ(*page.value("sluice_kube_request_duration_seconds_sum", {{"verb", "list"}}),
                     42.343);
    EXPECT_EQ(latency.count({"list"}), 5u);
    EXPECT_DOUBLE_EQ(latency.sum({"list"}), 42.343);

    // Exponential buckets: the le values are the bounds' shortest text, as Sluice wrote them.
    EXPECT_EQ(page.value("sluice_git_fetch_duration_seconds_bucket", {{"le", "0.0625"}}), 0);
    EXPECT_EQ(page.value("sluice_git_fetch_duration_seconds_bucket", {{"le", "0.9765625"}}), 1);
    EXPECT_EQ(page.value("sluice_git_fetch_duration_seconds_bucket", {{"le", "+Inf"}}), 1);
    EXPECT_EQ(page.value("sluice_git_fetch_duration_seconds_sum"), 0.5);

    // A labelled family whose series are all removed keeps its HELP and TYPE lines.
    depth.clear();
    page = parseExposition(r.exposition());
    EXPECT_TRUE(page.all("sluice_workqueue_depth").empty());
    EXPECT_EQ(page.families.at("sluice_workqueue_depth").type, "gauge");
}

TEST(Registry, ConcurrentUpdatesAreAllCounted) {
    Registry r;
    auto& c = r.counter("sluice_c_total", "c", {"t"});
    auto& h = r.histogram("sluice_h_seconds", "h", {"t"});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                c.inc({"x"});
                h.observe({"x"}, 0.001);
                if (i % 100 == 0) r.exposition();
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(c.value({"x"}), 4000);
    EXPECT_EQ(h.count({"x"}), 4000u);
}

}  // namespace
}  // namespace sluice::telemetry
