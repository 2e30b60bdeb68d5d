/**
 * The bare Deno copy (the transfer section's peer "deno-bare"): the ceiling a
 * Deno program reaches on this machine, measured in the same run as dfos.
 * One file, file -> socket -> file, as issue 10's prototype did it: 1 MiB
 * `conn.read` / `conn.write`, synchronous 1 MiB file calls (`readSync`,
 * `writeSync`), and a CRC-32 (`node:zlib`) on both ends, compared at the end.
 * No framing, no streams, no pool: the sender writes an 8-byte length, the
 * bytes, then their CRC-32 (4 bytes); the receiver writes the bytes to its
 * file, checks length and CRC, and answers one byte (1: whole, 0: not), so
 * a put's client ends only once the server has the whole file checked.
 *
 *     deno run -A bench/bare_copy.ts serve PORT FILE put|get    # one connection, then exits
 *     deno run -A bench/bare_copy.ts client PORT FILE put|get
 *
 * `serve` listens on 127.0.0.1:PORT; put: it receives into FILE; get: it
 * sends FILE. Exit status 0 when the body arrived whole on the receiving end.
 *
 * @module
 */

import { crc32 } from "node:zlib";

/** The size of every socket and file call. */
const PIECE_BYTES = 1 << 20;

/** Writes all of `bytes` to the connection. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/** Reads exactly `bytes.length` bytes; throws at the end of input. */
async function readFull(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let filled = 0; filled < bytes.length;) {
    const n = await conn.read(bytes.subarray(filled));
    if (n === null) throw new Error("Cannot read: the connection ended early");
    filled += n;
  }
}

/** Sends the file at `path`: its length, its bytes, its CRC-32; returns true when the receiver says whole. */
async function send(conn: Deno.Conn, path: string): Promise<boolean> {
  const file = Deno.openSync(path, { read: true });
  try {
    const size = file.statSync().size;
    const header = new Uint8Array(8);
    new DataView(header.buffer).setBigUint64(0, BigInt(size));
    await writeAll(conn, header);
    const buffer = new Uint8Array(PIECE_BYTES);
    let crc = 0;
    for (let left = size; left > 0;) {
      const n = file.readSync(buffer.subarray(0, Math.min(left, PIECE_BYTES)));
      if (n === null) throw new Error(`Cannot read "${path}": it ended early`);
      const piece = buffer.subarray(0, n);
      crc = crc32(piece, crc);
      await writeAll(conn, piece);
      left -= n;
    }
    const trailer = new Uint8Array(4);
    new DataView(trailer.buffer).setUint32(0, crc);
    await writeAll(conn, trailer);
    const answer = new Uint8Array(1);
    await readFull(conn, answer);
    return answer[0] === 1;
  } finally {
    file.close();
  }
}

/** Receives a body into `path` and answers whether it arrived whole; returns that. */
async function receive(conn: Deno.Conn, path: string): Promise<boolean> {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  let whole: boolean;
  try {
    const header = new Uint8Array(8);
    await readFull(conn, header);
    const size = Number(new DataView(header.buffer).getBigUint64(0));
    const buffer = new Uint8Array(PIECE_BYTES);
    let crc = 0;
    for (let left = size; left > 0;) {
      const n = await conn.read(buffer.subarray(0, Math.min(left, PIECE_BYTES)));
      if (n === null) throw new Error("Cannot read: the connection ended early");
      const piece = buffer.subarray(0, n);
      crc = crc32(piece, crc);
      for (let written = 0; written < n;) written += file.writeSync(piece.subarray(written));
      left -= n;
    }
    const trailer = new Uint8Array(4);
    await readFull(conn, trailer);
    whole = new DataView(trailer.buffer).getUint32(0) === crc;
  } finally {
    file.close();
  }
  await writeAll(conn, new Uint8Array([whole ? 1 : 0]));
  return whole;
}

/**
 * The command line.
 *
 * @param args `serve|client PORT FILE put|get`.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  const [role, port, path, direction] = args;
  if ((role !== "serve" && role !== "client") || !port || !path || (direction !== "put" && direction !== "get")) {
    console.error("Usage: bare_copy.ts serve|client PORT FILE put|get");
    return 2;
  }
  const address = { hostname: "127.0.0.1", port: Number(port) };
  let conn: Deno.TcpConn;
  if (role === "serve") {
    const listener = Deno.listen(address);
    conn = await listener.accept();
    listener.close();
  } else {
    conn = await Deno.connect(address);
  }
  conn.setNoDelay(true);
  try {
    const sends = (role === "client") === (direction === "put");
    return (sends ? await send(conn, path) : await receive(conn, path)) ? 0 : 1;
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
