/**
 * Tests of `MetricsLayout` (the families' slots and their exposition) and
 * `ServerMetrics` (dfos's families over shared memory).
 *
 * @module
 */

import { ok, strictEqual, throws } from "node:assert/strict";
import { escapeLabel, formatValue, MetricsLayout } from "./metrics.ts";
import { SERVER_METRICS_BYTES, ServerMetrics } from "./server_metrics.ts";

Deno.test("MetricsLayout refuses names, labels and buckets that break Prometheus's rules", () => {
  const layout = new MetricsLayout();
  throws(() => layout.counter({ name: "9lives_total", help: "x" }), RangeError);
  throws(() => layout.counter({ name: "requests", help: "x" }), /ends in _total/);
  throws(() => layout.gauge({ name: "open_total", help: "x" }), /ends in _total/);
  throws(() => layout.gauge({ name: "a", help: "x", labels: { "bad-name": ["1"] } }), /bad label name/);
  throws(() => layout.gauge({ name: "a", help: "x", labels: { __reserved: ["1"] } }), /bad label name/);
  throws(() => layout.gauge({ name: "a", help: "x", labels: { op: [] } }), /distinct values/);
  throws(() => layout.gauge({ name: "a", help: "x", labels: { op: ["get", "get"] } }), /distinct values/);
  throws(() => layout.histogram({ name: "h", help: "x", labels: { le: ["1"] }, buckets: [1] }), /bad label name/);
  throws(() => layout.histogram({ name: "h", help: "x", buckets: [1, 1] }), /increasing/);
  throws(() => layout.gauge({ name: "a", help: "two\nlines" }), /newline/);
  layout.gauge({ name: "a", help: "x" });
  throws(() => layout.counter({ name: "a", help: "x" }), /ends in _total|declared already/);
  throws(() => layout.gauge({ name: "a", help: "x" }), /declared already/);
  strictEqual(layout.slots, 1);
});

Deno.test("MetricFamily.slot gives each label combination its own slot and refuses values not declared", () => {
  const layout = new MetricsLayout();
  layout.gauge({ name: "first", help: "x" });
  const requests = layout.counter({
    name: "requests_total",
    help: "x",
    labels: { op: ["get", "put"], result: ["ok", "refused", "error"] },
  });
  const slots = ["get", "put"].flatMap((op) => ["ok", "refused", "error"].map((result) => requests.slot(op, result)));
  strictEqual(new Set(slots).size, 6);
  strictEqual(Math.min(...slots), 1);
  strictEqual(Math.max(...slots), 6);
  strictEqual(layout.slots, 7);
  throws(() => requests.slot("delete", "ok"), /op "delete" is not one of its values/);
});

Deno.test("MetricsLayout.render writes HELP, TYPE, escaped labels, cumulative buckets and +Inf equal to _count", () => {
  const layout = new MetricsLayout();
  const info = layout.gauge({ name: "info", help: "Its help.", labels: { v: ['a"b\\c\nd'] } });
  const latency = layout.histogram({ name: "latency_seconds", help: "Time.", buckets: [0.1, 1] });
  const values = new Float64Array(layout.slots);
  values[info.slot('a"b\\c\nd')] = 1;
  for (const seconds of [0.05, 0.1, 0.5, 2, 3]) latency.observe(values, latency.slot(), seconds);
  strictEqual(
    layout.render(values),
    [
      "# HELP info Its help.",
      "# TYPE info gauge",
      'info{v="a\\"b\\\\c\\nd"} 1',
      "# HELP latency_seconds Time.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{le="0.1"} 2',
      'latency_seconds_bucket{le="1"} 3',
      'latency_seconds_bucket{le="+Inf"} 5',
      "latency_seconds_sum 5.65",
      "latency_seconds_count 5",
      "",
    ].join("\n"),
  );
});

Deno.test("MetricsLayout.render leaves out the series of another value of a label it is told", () => {
  const layout = new MetricsLayout();
  layout.gauge({ name: "open", help: "x", labels: { backend: ["local", "s3"] } });
  layout.gauge({ name: "other", help: "x" });
  const text = layout.render(new Float64Array(layout.slots), { backend: "s3" });
  ok(text.includes('open{backend="s3"} 0\n'));
  ok(!text.includes("local"));
  ok(text.includes("other 0\n"));
});

Deno.test("formatValue and escapeLabel write what the text format reads", () => {
  strictEqual(formatValue(Infinity), "+Inf");
  strictEqual(formatValue(-Infinity), "-Inf");
  strictEqual(formatValue(NaN), "NaN");
  strictEqual(formatValue(0.25), "0.25");
  strictEqual(escapeLabel('x"y\\z\n'), 'x\\"y\\\\z\\n');
});

Deno.test("ServerMetrics counts in memory another view of the same buffer reads", () => {
  const metrics = new ServerMetrics();
  const reader = new ServerMetrics(metrics.buffer);
  metrics.connectionOpened();
  metrics.request("put", "ok", 0.002, { in: 100, out: 0 });
  metrics.request("put", "refused", 0.001, { in: 0, out: 0 });
  metrics.quotaRefused("entries");
  metrics.answerHeld(250);
  metrics.answerHeld(0);
  strictEqual(reader.value("dfos_connections_open"), 1);
  strictEqual(reader.value("dfos_requests_total", { op: "put", result: "ok" }), 1);
  strictEqual(reader.value("dfos_request_duration_seconds", { op: "put" }), 2);
  strictEqual(reader.value("dfos_received_bytes_total"), 100);
  strictEqual(reader.value("dfos_quota_refusals_total", { limit: "entries" }), 1);
  strictEqual(reader.value("dfos_login_answers_held_total"), 1);
  strictEqual(reader.value("dfos_login_held_seconds_total"), 0.25);
  throws(() => metrics.request("format", "ok", 0, { in: 0, out: 0 }), /op "format"/);
  throws(() => new ServerMetrics(new SharedArrayBuffer(SERVER_METRICS_BYTES - 8)), RangeError);
});
