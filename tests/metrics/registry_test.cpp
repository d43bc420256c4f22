// The metrics registry, read back through the strict exposition parser.
#include "sluice/metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "metrics/exposition_parser.h"

namespace sluice::metrics {
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

TEST(Registry, ValuesFormatAsPrometheusReadsThem) {
    EXPECT_EQ(formatValue(3), "3");
    EXPECT_EQ(formatValue(-2), "-2");
    EXPECT_EQ(formatValue(0.25), "0.25");
    EXPECT_EQ(formatValue(0.1), "0.1");
    EXPECT_EQ(formatValue(1e-7), "1e-07");
    EXPECT_EQ(formatValue(2.5e15), "2.5e+15");
    EXPECT_EQ(formatValue(INFINITY), "+Inf");
    EXPECT_EQ(formatValue(NAN), "NaN");
    EXPECT_EQ(exponentialBuckets(0.01, 2, 3), (std::vector<double>{0.01, 0.02, 0.04}));
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
}  // namespace sluice::metrics
