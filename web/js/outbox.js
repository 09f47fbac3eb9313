// Our sends: stored before they go out, resent with the same msg_id after a
// reconnect or a reload while the server still recognises it (the dedupe
// window), shown "unconfirmed" with a retry (a new msg_id) after that.

import { messageKey } from "./history.js";

export const DEFAULT_WINDOW_MS = 60 * 60 * 1000; // PROTOCOL.md default, for servers that omit it
// Resend only while clearly inside the window: the server's window starts
// when it first stored the send, no earlier than `created`.
const WINDOW_MARGIN_MS = 5000;
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
  }

  expired(record) {
    return Date.now() - record.created > this.windowMs - WINDOW_MARGIN_MS;
  }

  async send(peer, body) {
    const msgId = newMsgId();
    const me = this.history.me;
    const record = {
      key: messageKey(me, msgId), peer, from: me, to: peer, body, msg_id: msgId,
      ts: null, created: Date.now(), status: "sending",
    };
    await this.history.saveSent(record);
    this.onChange(record);
    if (this.conn.state === "connected") this._transmit(record);
    return record;
  }

  // A new msg_id: the old one may or may not have been stored, and past the
  // window the server cannot tell, so this may deliver a second copy.
  async retry(record) {
    await this.history.removeMessage(record.key);
    return this.send(record.peer, record.body);
  }

  // Every stored send still waiting, in the order it was written.
  async flush() {
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
