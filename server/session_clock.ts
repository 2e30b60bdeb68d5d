/**
 * `SessionClock`: a session's one timer. At any moment it runs one thing: a
 * deadline (the handshake's, the idle wait's, the grace of a close) or the
 * clock of a request, which runs out when nothing has moved either way on the
 * connection for the op timeout while the request waits on the client.
 * Setting one replaces the other, so a session never holds two timers and a
 * closed session holds none once {@linkcode SessionClock.stop} is called.
 *
 * @module
 */

/** What a request's clock looks at: the traffic, and who the request waits on. */
export interface RequestWatch {
  /** Messages moved so far either way; the count stops changing when the request stalls. */
  moved: () => number;
  /**
   * True while the server is what the request waits for (a handler at work,
   * a file being committed): the clock then does not run out.
   */
  serverWorking: () => boolean;
}

/** One timer, set to a deadline or to watch a request. */
export class SessionClock {
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Runs `then` after `ms`, replacing what the clock was set to do.
   *
   * @param ms Milliseconds; 0 for never (the clock is then stopped).
   * @param then What to do when the deadline passes.
   */
  deadline(ms: number, then: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = ms > 0 ? setTimeout(then, ms) : undefined;
  }

  /**
   * Starts the clock of a request, replacing what the clock was set to do:
   * `onStall` runs once no message has moved either way for `ms` while the
   * request waits on the client (one that stopped sending mid-body, or stopped
   * reading a download or its replies). A slow request that keeps moving is
   * never cut, however long it takes. The clock is looked at four times per
   * timeout, so a stall is seen within 1.25 timeouts.
   *
   * @param ms The op timeout; 0 for none (the clock is then stopped).
   * @param watch The traffic, and who the request waits on.
   * @param onStall What to do on a stall.
   */
  watch(ms: number, watch: RequestWatch, onStall: () => void): void {
    if (ms <= 0) {
      this.stop();
      return;
    }
    let seen = watch.moved();
    let movedAt = performance.now();
    const look = () => {
      const now = performance.now();
      const count = watch.moved();
      if (count !== seen || watch.serverWorking()) {
        seen = count;
        movedAt = now;
      }
      const left = movedAt + ms - now;
      if (left <= 0) onStall();
      else this.deadline(Math.max(1, Math.min(left, ms / 4)), look);
    };
    this.deadline(Math.max(1, ms / 4), look);
  }

  /** Stops the clock: nothing is to run. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
