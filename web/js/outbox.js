// Our sends: stored before they go out, resent with the same msg_id after a
// reconnect or a reload while the server still recognises it (the dedupe
// window), shown "unconfirmed" with a retry (a new msg_id) after that.

import { messageKey } from "./history.js";

export const DEFAULT_WINDOW_MS = 60 * 60 * 1000; // PROTOCOL.md default, for servers that omit it
// Resend only while clearly inside the window: the server's window starts
// when it first stored the send, no earlier than `created`.
const WINDOW_MARGIN_MS = 5000;
const WINDOW_MARGIN_SHARE = 0.1; // of a window shorter than 50 s
const RETRY_DELAY_MS = 1000;

export function newMsgId() {
  // crypto.randomUUID() needs a secure context; plain http to a LAN address is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

export class Outbox {
  constructor({ conn, history, onChange }) {
    this.conn = conn;
    this.history = history;
    this.onChange = onChange;
    this.windowMs = DEFAULT_WINDOW_MS;
    this.inFlight = new Set();
    this.retryTimer = null;
    this.pumping = null;
    this.again = false;
    this.lastCreated = 0;
  }

  expired(record) {
    const margin = Math.min(WINDOW_MARGIN_MS, this.windowMs * WINDOW_MARGIN_SHARE);
    return Date.now() - record.created > this.windowMs - margin;
  }

  async send(peer, body) {
    const msgId = newMsgId();
    const me = this.history.me;
    const record = {
      key: messageKey(me, msgId), peer, from: me, to: peer, body, msg_id: msgId,
      ts: null, created: this._now(), status: "sending",
    };
    await this.history.saveSent(record);
    this.onChange(record);
    this.flush();
    return record;
  }

  // A new msg_id: the old one may or may not have been stored, and past the
  // window the server cannot tell, so this may deliver a second copy.
  async retry(record) {
    await this.history.removeMessage(record.key);
    return this.send(record.peer, record.body);
  }

  // Sends every stored send still waiting, in the order they were written.
  // Runs one at a time, and only while connected (after the resume), so the
  // wire order is the order of `created` whatever the timing of new sends.
  flush() {
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      do {
        this.again = false;
        if (this.conn.state === "connected") await this._flushOnce();
      } while (this.again);
    })().finally(() => { this.pumping = null; });
    return this.pumping;
  }

  // Strictly increasing, so two sends in one millisecond keep their order.
  _now() {
    this.lastCreated = Math.max(Date.now(), this.lastCreated + 1);
    return this.lastCreated;
  }

  async _flushOnce() {
    for (const record of await this.history.pendingSends()) {
      if (this.expired(record)) {
        await this._update(record, { status: "unconfirmed" });
      } else {
        this._transmit(record);
      }
    }
  }

  _transmit(record) {
    if (this.inFlight.has(record.key)) return;
    this.inFlight.add(record.key);
    this.conn.request("send", { to: record.to, body: record.body, msg_id: record.msg_id })
      .then((reply) => this._update(record, { status: "sent", ts: reply.ts }))
      .catch((err) => {
        if (err.code === "disconnected") return; // resent by flush() on the next connection
        if (err.code === "unavailable" || err.code === "rate_limited") {
          this._scheduleFlush();
          return;
        }
        return this._update(record, { status: "failed", error: err.message || err.code });
      })
      .finally(() => this.inFlight.delete(record.key));
  }

  _scheduleFlush() {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.conn.state === "connected") this.flush();
    }, RETRY_DELAY_MS);
  }

  async _update(record, changes) {
    Object.assign(record, changes);
    await this.history.saveSent(record);
    this.onChange(record);
  }
}
