/**
 * The defaults both sides agree on: the port, where the server listens and
 * where the client looks for it, and the name each side gives in HELLO and
 * WELCOME. Every module that needs one imports it from here.
 *
 * @module
 */

/** The port a server listens on, and a client connects to, when none is named. */
export const DEFAULT_PORT = 5000;

/**
 * The address a server listens on when `--host` names none: loopback only, so
 * that a server started on its defaults (with the sample users file, whose
 * passwords the README prints) cannot be reached from the network.
 * `--host 0.0.0.0` serves every interface.
 */
export const DEFAULT_LISTEN_HOSTNAME = "127.0.0.1";

/** The server a client connects to when neither `--server` nor `DFOS_SERVER` names one. */
export const DEFAULT_SERVER = `127.0.0.1:${DEFAULT_PORT}`;

/** The name and version dfos gives in HELLO (client) and WELCOME (server). */
export const AGENT = "dfos/0.1.0";
