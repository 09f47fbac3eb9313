// The page: sign-in, the session across reconnects and reloads, events.

import { Connection } from "./connection.js";
import { History } from "./history.js";
import { DEFAULT_WINDOW_MS, Outbox } from "./outbox.js";
import { ChatView } from "./chat.js";

const SESSION_KEY = "chat.session";
const PEERS_KEY = "chat.peers";
const CONNECT_WAIT_MS = 10000;

const ERRORS = {
  bad_credentials: "Wrong username or password.",
  username_taken: "That name is taken; pick another.",
  invalid_username: "A name is 1-32 characters of a-z 0-9 _ . - and starts with a letter or digit.",
  invalid_password: "A password is 8 to 128 characters.",
  rate_limited: "Too many attempts; wait a minute and try again.",
  unavailable: "The service is busy; try again in a moment.",
  disconnected: "No server reachable right now; try again in a moment.",
};

const ENDED = {
  logout: "You were logged out on another device.",
  password_changed: "Your password was changed; log in with the new one.",
  replaced: "This session was replaced by newer logins; log in again.",
  expired: "Your session expired; log in again.",
};

const $ = (id) => document.getElementById(id);

function explain(err) {
  return ERRORS[err.code] || err.message || String(err);
}

function ownWsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

function loadJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

class Page {
  constructor() {
    this.session = loadJson(SESSION_KEY); // {username, token}
    this.conn = new Connection([ownWsUrl(), ...(loadJson(PEERS_KEY) || [])]);
    this.history = null;
    this.outbox = null;
    this.chat = new ChatView({ page: this });
    this.catchingUp = false;
    this.pushedDuringCatchUp = null;
    this.incoming = Promise.resolve();
    this.conn.onState = (state, url) => {
      this.showState(state, url);
      if (state === "connected") this.outbox?.flush();
    };
    this.conn.onEvent = (frame) => this.onEvent(frame);
    this.conn.onOpen = () => this.restore();
  }

  async boot() {
    this.bindAuth();
    if (this.session) await this.enterChat();
    else this.showAuth("");
    this.conn.start();
    this.learnPeers();
  }

  // The instance names its peers; the page keeps them for the next reload.
  async learnPeers() {
    try {
      const reply = await fetch("/config.json", { cache: "no-store" });
      const config = await reply.json();
      const urls = [ownWsUrl(), ...config.ws_urls];
      localStorage.setItem(PEERS_KEY, JSON.stringify(config.ws_urls));
      this.conn.setUrls(urls);
    } catch (err) {
      console.warn("no peer list:", err);
    }
  }

  showState(state, url) {
    const indicator = $("conn");
    const where = url ? new URL(url).host : "";
    indicator.dataset.state = state;
    indicator.textContent = state === "connected" ? `Connected to ${where}`
      : state === "connecting" ? "Connecting…" : "Reconnecting…";
  }

  // Auth --------------------------------------------------------------------

  bindAuth() {
    $("auth-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.authenticate(false);
    });
    $("register-btn").addEventListener("click", () => this.authenticate(true));
    $("password2").addEventListener("keydown", (e) => {
      // Whoever typed the password twice means Register, not Log in.
      if (e.key === "Enter" && $("password2").value) {
        e.preventDefault();
        this.authenticate(true);
      }
    });
    $("logout").addEventListener("click", () => this.logout());
  }

  showAuth(notice) {
    $("chat").hidden = true;
    $("account").hidden = true;
    $("auth").hidden = false;
    $("auth-notice").textContent = notice;
    $("auth-notice").hidden = !notice;
    $("password").value = "";
    $("password2").value = "";
    $("username").focus();
  }

  async authenticate(register) {
    const username = $("username").value.trim();
    const password = $("password").value;
    const notice = (text) => {
      $("auth-notice").textContent = text;
      $("auth-notice").hidden = !text;
    };
    if (!username || !password) return notice("Type a username and a password.");
    if (register && password !== $("password2").value) {
      return notice("The two passwords differ; type the same password twice to register.");
    }
    for (const button of document.querySelectorAll("#auth-form button")) button.disabled = true;
    notice(register ? "Registering…" : "Logging in…");
    try {
      await this.conn.whenConnected(CONNECT_WAIT_MS);
      if (register) await this.conn.request("register", { username, password });
      const reply = await this.conn.request("login", { username, password });
      this.session = { username: reply.username, token: reply.token };
      localStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
      await this.enterChat();
      await this.catchUp(reply);
      this.outbox?.flush();
    } catch (err) {
      notice(explain(err));
    } finally {
      for (const button of document.querySelectorAll("#auth-form button")) button.disabled = false;
    }
  }

  async enterChat() {
    this.history = await History.open(this.session.username);
    this.outbox = new Outbox({ conn: this.conn, history: this.history,
      onChange: (record) => this.chat.changed(record.peer) });
    $("auth").hidden = true;
    $("chat").hidden = false;
    $("account").hidden = false;
    $("me").textContent = this.session.username;
    await this.chat.start(this.history, this.outbox, this.session.username);
  }

  // Ends the session on this page; with erase, its history goes too.
  async endSession(notice, { erase = false } = {}) {
    const username = this.session?.username;
    this.session = null;
    localStorage.removeItem(SESSION_KEY);
    this.chat.stop();
    if (this.history) this.history.close();
    this.history = null;
    this.outbox = null;
    if (erase && username) await History.erase(username).catch(() => {});
    this.showAuth(notice);
  }

  async logout() {
    try {
      await this.conn.request("logout");
    } catch (err) {
      console.warn("logout not confirmed; the token expires on its own:", err);
    }
    await this.endSession("You logged out.");
  }

  async deleteAccount(password) {
    await this.conn.request("delete_account", { password });
    await this.endSession("Your account was deleted.", { erase: true });
  }

  // Session on each (re)connection ------------------------------------------

  async restore() {
    if (!this.session) return;
    let reply;
    try {
      reply = await this.conn.request("resume", { token: this.session.token });
    } catch (err) {
      if (err.code === "bad_token") {
        await this.endSession("Your session has ended; log in again.");
        return;
      }
      throw err;
    }
    await this.catchUp(reply);
  }

  // Everything that waited in the inbox, stored, then acked; then our sends.
  async catchUp(reply) {
    if (!this.outbox) return;
    this.outbox.windowMs = reply.dedupe_window_ms || DEFAULT_WINDOW_MS;
    this.catchingUp = true;
    this.pushedDuringCatchUp = null;
    try {
      for (;;) {
        const page = await this.conn.request("fetch", { limit: 100 });
        if (!page.messages.length) break;
        await this.store(page.messages);
        await this.conn.request("ack", { seq: page.messages[page.messages.length - 1].seq });
        if (!page.unread) break;
      }
    } finally {
      this.catchingUp = false;
    }
    if (this.pushedDuringCatchUp) this.ack(this.pushedDuringCatchUp);
  }

  // Stores in arrival order, one after the other; resolves when all are stored.
  store(messages) {
    this.incoming = this.incoming.catch(() => {}).then(async () => {
      const added = [];
      for (const message of messages) {
        if (!this.history) return;
        const open = this.chat.isOpen(message.from === this.session.username
          ? message.to : message.from);
        if (await this.history.storeReceived(message, { unread: !open })) added.push(message);
      }
      if (added.length) this.chat.received(added);
    });
    return this.incoming;
  }

  ack(seq) {
    this.conn.request("ack", { seq }).catch((err) => {
      console.warn("ack not sent; the message comes again and is dropped as seen:", err);
    });
  }

  onEvent(frame) {
    if (frame.event === "message" && this.history) {
      const message = frame.message;
      this.store([message]).then(() => {
        if (this.catchingUp) this.pushedDuringCatchUp = message.seq;
        else this.ack(message.seq);
      }, (err) => console.error("could not store a message; not acked:", err));
    } else if (frame.event === "shutdown") {
      this.conn.avoid(Number(frame.retry_after_ms) || 1000);
    } else if (frame.event === "account_deleted") {
      this.endSession("Your account was deleted on another device.", { erase: true });
    } else if (frame.event === "session_ended") {
      this.endSession(ENDED[frame.reason] || `Your session ended (${frame.reason}).`);
    }
  }
}

new Page().boot();
