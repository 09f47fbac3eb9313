// Each user's history on this device, in IndexedDB (database "chat-<name>").
//
// The server is a mailbox: a message leaves it once acked, so this is the
// only copy of a conversation. The page acks a message only after the
// transaction that stores it has completed.
//
// messages:      key "<from>\n<msg_id>" (a sender's msg_id is unique), peer,
//                from, to, body, msg_id, ts (server time, null until sent),
//                created (local time), status: received | sending | sent |
//                unconfirmed | failed
// conversations: peer, last (body), time, mine (last was ours), unread

const VERSION = 1;

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function messageKey(from, msgId) {
  return `${from}\n${msgId}`;
}

export function sortTime(record) {
  return record.ts ?? record.created;
}

export class History {
  static async open(username) {
    const request = indexedDB.open(`chat-${username}`, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      const messages = db.createObjectStore("messages", { keyPath: "key" });
      messages.createIndex("peer", "peer");
      messages.createIndex("status", "status");
      db.createObjectStore("conversations", { keyPath: "peer" });
    };
    const db = await result(request);
    // Another tab deleting this account's history must not wait for us.
    db.onversionchange = () => db.close();
    return new History(db, username);
  }

  static async erase(username) {
    await result(indexedDB.deleteDatabase(`chat-${username}`));
  }

  constructor(db, username) {
    this.db = db;
    this.me = username;
  }

  close() {
    this.db.close();
  }

  // Stores a message from the server; false when it was already stored
  // (a push and a fetch, or a resend, can bring one twice).
  async storeReceived(message, { unread }) {
    const tx = this.db.transaction(["messages", "conversations"], "readwrite");
    const messages = tx.objectStore("messages");
    const key = messageKey(message.from, message.msg_id);
    const peer = message.from === this.me ? message.to : message.from;
    let added = false;
    const existing = await result(messages.get(key));
    if (!existing) {
      added = true;
      messages.put({
        key, peer, from: message.from, to: message.to, body: message.body,
        msg_id: message.msg_id, ts: message.ts, created: message.ts, status: "received",
      });
      await this._touch(tx, peer, message.body, message.ts, message.from === this.me,
        unread ? 1 : 0);
    } else if (existing.status !== "received" && existing.status !== "sent") {
      // Our own send to ourselves came back: it is stored, so it is sent.
      messages.put({ ...existing, status: "sent", ts: message.ts });
    }
    await done(tx);
    return added;
  }

  // Creates or updates one of our sends.
  async saveSent(record) {
    const tx = this.db.transaction(["messages", "conversations"], "readwrite");
    tx.objectStore("messages").put(record);
    await this._touch(tx, record.peer, record.body, sortTime(record), true, 0);
    await done(tx);
  }

  async removeMessage(key) {
    const tx = this.db.transaction("messages", "readwrite");
    tx.objectStore("messages").delete(key);
    await done(tx);
  }

  async conversation(peer) {
    const tx = this.db.transaction("messages");
    const rows = await result(tx.objectStore("messages").index("peer").getAll(peer));
    return rows.sort((a, b) => sortTime(a) - sortTime(b) || a.created - b.created);
  }

  async conversations() {
    const tx = this.db.transaction("conversations");
    const rows = await result(tx.objectStore("conversations").getAll());
    return rows.sort((a, b) => b.time - a.time);
  }

  async pendingSends() {
    const tx = this.db.transaction("messages");
    const rows = await result(tx.objectStore("messages").index("status").getAll("sending"));
    return rows.sort((a, b) => a.created - b.created);
  }

  async openConversation(peer) {
    const tx = this.db.transaction("conversations", "readwrite");
    const store = tx.objectStore("conversations");
    const conv = await result(store.get(peer));
    store.put({ ...(conv || { peer, last: "", time: Date.now(), mine: false }), unread: 0 });
    await done(tx);
  }

  async _touch(tx, peer, body, time, mine, unread) {
    const store = tx.objectStore("conversations");
    const conv = (await result(store.get(peer))) || { peer, last: "", time: 0, unread: 0 };
    if (time >= conv.time) Object.assign(conv, { last: body, time, mine });
    conv.unread += unread;
    store.put(conv);
  }
}
