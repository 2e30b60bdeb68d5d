/**
 * `ServerMetrics`: what a dfos server counts for Prometheus, and its
 * exposition (docs/METRICS.md lists every metric). The numbers live in a
 * `SharedArrayBuffer` laid out by `MetricsLayout` (server/metrics.ts): the
 * server's worker counts in it as things happen (a connection accepted, a
 * login, a request done, a storage call timed), and the process around the
 * sandbox, which answers `/metrics` (server/metrics_endpoint.ts), reads the
 * same memory at a scrape. A scrape formats a fixed number of series; it
 * never asks the worker, and never walks connections.
 *
 * Every label takes values from a small fixed set; none names a user, a
 * file or an address. Each number has one writer: the worker (or the
 * in-process server) for the counts, the reading thread for the process's
 * own figures, which it sets just before it renders.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerMetrics } from "./server_metrics.ts";
 * const metrics = new ServerMetrics();
 * metrics.connectionOpened();
 * const inWorker = new ServerMetrics(metrics.buffer); // the same numbers, in another thread
 * assert.ok(inWorker.render().includes("dfos_connections_open 1\n"));
 * ```
 *
 * @module
 */

import { AGENT } from "../shared/defaults.ts";
import { OPERATION_KINDS } from "./handlers.ts";
import { MetricsLayout } from "./metrics.ts";
import type { QuotaLimit } from "./quota.ts";
import { FAILURE_CLASSES, type FailureClass } from "./stats.ts";

/** How a request ended: `ok`, or the class of its failure (`FailureClass`, server/stats.ts) in snake case. */
export type RequestResult = "ok" | Snake<FailureClass>;

/** `client gone` as `client_gone`. */
type Snake<T extends string> = T extends `${infer A} ${infer B}` ? `${A}_${Snake<B>}` : T;

/** Every request result, `ok` first. */
export const REQUEST_RESULTS: readonly RequestResult[] = [
  "ok",
  ...FAILURE_CLASSES.map((kind) => kind.replaceAll(" ", "_") as RequestResult),
];

/**
 * How a login attempt ended: `ok`; `failed` (an unknown user or a wrong
 * password, alike on purpose, or a mechanism not offered); `malformed` (the
 * exchange broke the protocol); `locked_out` (refused at once, the address
 * being locked out); `clear_refused` (a password stored in clear, from
 * another host); `busy` (the user's connection cap).
 */
export type LoginResult = "ok" | "failed" | "malformed" | "locked_out" | "clear_refused" | "busy";

/** Every login result. */
export const LOGIN_RESULTS: readonly LoginResult[] = [
  "ok",
  "failed",
  "malformed",
  "locked_out",
  "clear_refused",
  "busy",
];

/** Why a connection was refused: the server's cap (`busy`), its address's, or its user's (at login). */
export type RefusalReason = "busy" | "per_address" | "per_user";

/** Every refusal reason. */
export const REFUSAL_REASONS: readonly RefusalReason[] = ["busy", "per_address", "per_user"];

/** Every quota limit (`QuotaLimit`, server/quota.ts). */
export const QUOTA_LIMITS: readonly QuotaLimit[] = ["bytes", "entries", "file_size"];

/** The storage backends the `backend` label names; a backend of another name is counted as `other`. */
export const STORAGE_BACKENDS = ["local", "s3", "other"] as const;

/** A storage backend's label. */
export type StorageBackend = typeof STORAGE_BACKENDS[number];

/**
 * The storage calls timed (server/metered_storage.ts): each method of
 * `Storage`, `Upload` and `ReadHandle` in snake case; `read`, `read_range`
 * and `chunk_lists` time a whole iteration.
 */
export const STORAGE_OPERATIONS = [
  "prepare_user",
  "begin_upload",
  "upload_write",
  "upload_commit",
  "upload_abort",
  "upload_keep",
  "resume_upload",
  "kept_uploads",
  "drop_kept",
  "sweep_kept",
  "read_chunk_list",
  "write_chunk_list",
  "chunk_lists",
  "changes",
  "changed_names",
  "open_read",
  "read",
  "read_range",
  "remove",
  "rename",
  "list",
  "stat",
  "usage",
  "abort_uploads",
] as const;

/** One storage call's label. */
export type StorageOperation = typeof STORAGE_OPERATIONS[number];

/** Request durations' buckets, seconds: from a quick STAT to a transfer of minutes. */
export const REQUEST_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** Storage calls' buckets, seconds: from a cached stat to a large commit. */
export const STORAGE_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const layout = new MetricsLayout();
const version = AGENT.slice(AGENT.indexOf("/") + 1);
const backend = { backend: STORAGE_BACKENDS };

/** The families, in the exposition's order. */
const FAMILIES = {
  buildInfo: layout.gauge({
    name: "dfos_build_info",
    help: "Always 1; its labels say which dfos and which Deno serve.",
    labels: { version: [version], deno: [Deno.version.deno] },
  }),
  startTime: layout.gauge({
    name: "process_start_time_seconds",
    help: "When the process started, seconds since the Unix epoch.",
  }),
  residentMemory: layout.gauge({
    name: "process_resident_memory_bytes",
    help: "The process's resident set size.",
  }),
  connectionsOpen: layout.gauge({ name: "dfos_connections_open", help: "Connections served now." }),
  connectionsAccepted: layout.counter({
    name: "dfos_connections_accepted_total",
    help: "Connections taken in to be served (those refused at once are not).",
  }),
  connectionsRefused: layout.counter({
    name: "dfos_connections_refused_total",
    help: "Connections refused with BUSY, by the cap that refused them.",
    labels: { reason: REFUSAL_REASONS },
  }),
  logins: layout.counter({
    name: "dfos_logins_total",
    help: "Login attempts, by how they ended.",
    labels: { result: LOGIN_RESULTS },
  }),
  answersHeld: layout.counter({
    name: "dfos_login_answers_held_total",
    help: "Login answers the throttle held back after failed logins.",
  }),
  heldSeconds: layout.counter({
    name: "dfos_login_held_seconds_total",
    help: "Time login answers were held back, in all.",
  }),
  lockouts: layout.counter({
    name: "dfos_login_lockouts_total",
    help: "Lockouts of an address begun after too many failed logins.",
  }),
  requests: layout.counter({
    name: "dfos_requests_total",
    help: "Requests served, by operation and how they ended.",
    labels: { op: OPERATION_KINDS, result: REQUEST_RESULTS },
  }),
  requestDuration: layout.histogram({
    name: "dfos_request_duration_seconds",
    help: "Time from a request's arrival to its reply and body sent, by operation.",
    labels: { op: OPERATION_KINDS },
    buckets: REQUEST_BUCKETS,
  }),
  bytesIn: layout.counter({
    name: "dfos_received_bytes_total",
    help: "Body bytes received (uploads), those of transfers cut short included.",
  }),
  bytesOut: layout.counter({
    name: "dfos_sent_bytes_total",
    help: "Body bytes sent (downloads, previews, chunk lists), those of transfers cut short included.",
  }),
  integrity: layout.counter({
    name: "dfos_integrity_failures_total",
    help: "Request bodies whose length or check did not match their END.",
  }),
  quotaRefusals: layout.counter({
    name: "dfos_quota_refusals_total",
    help: "Uploads and renames refused by a limit of the user's quota or the largest file.",
    labels: { limit: QUOTA_LIMITS },
  }),
  watchesHeld: layout.gauge({
    name: "dfos_watches_held",
    help: "Watch requests held on this server, waiting for their user's change counter to move.",
  }),
  storageDuration: layout.histogram({
    name: "dfos_storage_operation_duration_seconds",
    help: "Time of each storage call, by backend and operation.",
    labels: { ...backend, operation: STORAGE_OPERATIONS },
    buckets: STORAGE_BUCKETS,
  }),
  storageFailures: layout.counter({
    name: "dfos_storage_operation_failures_total",
    help: "Storage calls that failed (an error of the storage, not a refusal such as NOT_FOUND).",
    labels: { ...backend, operation: STORAGE_OPERATIONS },
  }),
  storageConflicts: layout.counter({
    name: "dfos_storage_conflicts_total",
    help: "Conditional writes the store refused because another writer changed the object first.",
    labels: backend,
  }),
  multipartOpen: layout.gauge({
    name: "dfos_storage_multipart_uploads_open",
    help: "Multipart uploads this server has begun and not yet completed or aborted.",
    labels: backend,
  }),
};

/** The slot after the families: which backend is in use (its index in STORAGE_BACKENDS); never rendered. */
const BACKEND_SLOT = layout.slots;

/** Bytes of a {@linkcode ServerMetrics} buffer. */
export const SERVER_METRICS_BYTES: number = layout.bytes + Float64Array.BYTES_PER_ELEMENT;

/** Where one storage call's figures go, for one backend: the slots of each operation. */
interface StorageSlots {
  duration: number[];
  failures: number[];
  conflicts: number;
  multipart: number;
}

/** The counts of one server, in memory another thread may share. */
export class ServerMetrics {
  /** The memory the numbers live in: pass it to another thread and build a `ServerMetrics` on it there. */
  readonly buffer: SharedArrayBuffer;
  readonly #values: Float64Array;
  #storage: StorageSlots;

  /**
   * @param buffer Numbers made by another thread, to share; fresh ones (all 0) when omitted.
   * @throws {RangeError} for a buffer of another size.
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SERVER_METRICS_BYTES)) {
    if (buffer.byteLength !== SERVER_METRICS_BYTES) {
      throw new RangeError(
        `Cannot use a buffer of ${buffer.byteLength} bytes for the server's metrics: it needs ${SERVER_METRICS_BYTES}`,
      );
    }
    this.buffer = buffer;
    this.#values = new Float64Array(buffer);
    this.#storage = storageSlots(STORAGE_BACKENDS[this.#values[BACKEND_SLOT]] ?? "local");
  }

  /** Counts a connection taken in (after its caps admitted it). */
  connectionOpened(): void {
    this.#values[FAMILIES.connectionsAccepted.offset] += 1;
    this.#values[FAMILIES.connectionsOpen.offset] += 1;
  }

  /** Counts a connection closed that {@linkcode ServerMetrics.connectionOpened} counted. */
  connectionClosed(): void {
    this.#values[FAMILIES.connectionsOpen.offset] -= 1;
  }

  /**
   * Counts a connection refused with BUSY.
   *
   * @param reason Which cap refused it.
   */
  connectionRefused(reason: RefusalReason): void {
    this.#values[FAMILIES.connectionsRefused.slot(reason)] += 1;
  }

  /**
   * Counts a login attempt.
   *
   * @param result How it ended.
   */
  login(result: LoginResult): void {
    this.#values[FAMILIES.logins.slot(result)] += 1;
  }

  /**
   * Counts a login answer held back by the throttle.
   *
   * @param ms For how long, milliseconds (nothing is counted for 0).
   */
  answerHeld(ms: number): void {
    if (ms <= 0) return;
    this.#values[FAMILIES.answersHeld.offset] += 1;
    this.#values[FAMILIES.heldSeconds.offset] += ms / 1000;
  }

  /** Counts a lockout begun. */
  lockout(): void {
    this.#values[FAMILIES.lockouts.offset] += 1;
  }

  /**
   * Counts a request done, its time and the body bytes it moved.
   *
   * @param op Its kind (a handler row's `kind`).
   * @param result How it ended.
   * @param seconds From its arrival to its end.
   * @param bytes Body bytes received and sent (a transfer cut short: those it moved).
   */
  request(op: string, result: RequestResult, seconds: number, bytes: { in: number; out: number }): void {
    const values = this.#values;
    values[FAMILIES.requests.slot(op, result)] += 1;
    FAMILIES.requestDuration.observe(values, FAMILIES.requestDuration.slot(op), seconds);
    values[FAMILIES.bytesIn.offset] += bytes.in;
    values[FAMILIES.bytesOut.offset] += bytes.out;
  }

  /** Counts a request body whose check failed. */
  integrityFailure(): void {
    this.#values[FAMILIES.integrity.offset] += 1;
  }

  /**
   * Counts an upload or rename refused by the quota or the largest file.
   *
   * @param limit Which limit.
   */
  quotaRefused(limit: QuotaLimit): void {
    this.#values[FAMILIES.quotaRefusals.slot(limit)] += 1;
  }

  /**
   * Names the storage backend the `storage` figures are about; the exposition
   * shows its series only.
   *
   * @param name `local`, `s3`; any other is counted as `other`.
   */
  storageBackend(name: string): void {
    const index = STORAGE_BACKENDS.indexOf(name as StorageBackend);
    const known = index < 0 ? STORAGE_BACKENDS.indexOf("other") : index;
    this.#values[BACKEND_SLOT] = known;
    this.#storage = storageSlots(STORAGE_BACKENDS[known]);
  }

  /**
   * Counts one storage call.
   *
   * @param operation Which.
   * @param seconds How long it took.
   * @param failed True when it failed with an error of the storage.
   */
  storageCall(operation: StorageOperation, seconds: number, failed: boolean): void {
    const index = STORAGE_OPERATIONS.indexOf(operation);
    FAMILIES.storageDuration.observe(this.#values, this.#storage.duration[index], seconds);
    if (failed) this.#values[this.#storage.failures[index]] += 1;
  }

  /** Counts a conditional write of the storage's that lost to another writer. */
  storageConflict(): void {
    this.#values[this.#storage.conflicts] += 1;
  }

  /**
   * Counts a multipart upload begun (+1) or completed or aborted (-1).
   *
   * @param change +1 or -1.
   */
  multipartUploads(change: 1 | -1): void {
    this.#values[this.#storage.multipart] += change;
  }

  /**
   * Counts a `watch` request beginning to wait (+1) or done waiting (-1).
   *
   * @param change +1 or -1.
   */
  watchesHeld(change: 1 | -1): void {
    this.#values[FAMILIES.watchesHeld.offset] += change;
  }

  /**
   * Reads one number, by the family's name and its labels' values: for tests and the benchmark.
   *
   * @param name The family (a histogram: its count).
   * @param labels Its labels' values.
   * @returns The number.
   */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number {
    const family = Object.values(FAMILIES).find((each) => each.name === name);
    if (family === undefined) throw new RangeError(`Cannot read metric ${name}: there is none`);
    const slot = family.slot(...family.labelNames.map((label) => labels[label]));
    if (family.width === 1) return this.#values[slot];
    let count = 0;
    for (let bucket = 0; bucket < family.width - 1; bucket++) count += this.#values[slot + bucket];
    return count;
  }

  /**
   * The exposition of every family, the process's start time and memory
   * read now (by the calling thread: the process's own).
   *
   * @returns The text of a `/metrics` answer.
   */
  render(): string {
    const values = this.#values;
    values[FAMILIES.buildInfo.offset] = 1;
    values[FAMILIES.startTime.offset] = performance.timeOrigin / 1000;
    values[FAMILIES.residentMemory.offset] = Deno.memoryUsage().rss;
    return layout.render(values, { backend: STORAGE_BACKENDS[values[BACKEND_SLOT]] ?? "local" });
  }
}

/** The slots of one backend's storage figures, per operation. */
function storageSlots(backend: StorageBackend): StorageSlots {
  return {
    duration: STORAGE_OPERATIONS.map((operation) => FAMILIES.storageDuration.slot(backend, operation)),
    failures: STORAGE_OPERATIONS.map((operation) => FAMILIES.storageFailures.slot(backend, operation)),
    conflicts: FAMILIES.storageConflicts.slot(backend),
    multipart: FAMILIES.multipartOpen.slot(backend),
  };
}
