/**
 * What counts as this host: `isLoopback()` tells a loopback address
 * (127.0.0.0/8, `::1`, and 127.x.x.x mapped into IPv6) from any other. The
 * server accepts a login checked against a password stored in clear only from
 * such an address, and warns at start when it listens beyond loopback with
 * such lines in its users file (docs/SECURITY.md, "Exposure").
 *
 * @module
 */

/**
 * Tells whether `hostname` is a loopback address.
 *
 * @param hostname An IPv4 or IPv6 address, as `Deno.NetAddr.hostname` gives it.
 * @returns True for 127.0.0.0/8, `::1` and `::ffff:127.x.x.x`.
 *
 * @example Usage
 * ```ts
 * import { isLoopback } from "./loopback.ts";
 * console.assert(isLoopback("127.0.0.1") && isLoopback("::1") && !isLoopback("10.0.0.1"));
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (/^127\.\d+\.\d+\.\d+$/.test(host)) return true;
  if (/^::ffff:127\.\d+\.\d+\.\d+$/.test(host)) return true;
  return host === "::1" || host === "0:0:0:0:0:0:0:1";
}

/** The host part of a `host:port` address as the server writes it (an IPv6 host is not in brackets). */
export function hostOf(remote: string): string {
  return remote.slice(0, remote.lastIndexOf(":"));
}
