// The chat screen: people search, conversation list, the open conversation,
// the composer and the delete-account dialog.

import { renderLog, renderPeople } from "./view.js";

const PAGE_SIZE = 20;
const $ = (id) => document.getElementById(id);

export class ChatView {
  constructor({ page }) {
    this.page = page;
    this.history = null;
    this.outbox = null;
    this.me = null;
    this.peer = null;
    this.search = { pattern: null, cursor: null, names: [] };
    this.bind();
  }

  bind() {
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.find(false);
    });
    $("search").addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.find(false), 300);
    });
    $("more").addEventListener("click", () => this.find(true));
    $("compose").addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    $("message").addEventListener("keydown", (e) => {
      // Enter sends; Shift+Enter is a new line; not while an IME composes.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    $("back").addEventListener("click", () => this.close());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.peer !== null && this.history) {
        this.history.openConversation(this.peer).then(() => this.refreshList());
      }
    });
    $("delete").addEventListener("click", () => {
      $("delete-password").value = "";
      $("delete-error").textContent = "";
      $("delete-dialog").showModal();
    });
    $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
    $("delete-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await this.page.deleteAccount($("delete-password").value);
        $("delete-dialog").close();
      } catch (err) {
        $("delete-error").textContent = err.code === "bad_credentials"
          ? "That is not your password." : (err.message || String(err));
      }
    });
  }

  async start(history, outbox, me) {
    this.history = history;
    this.outbox = outbox;
    this.me = me;
    this.peer = null;
    $("results").replaceChildren();
    $("more").hidden = true;
    $("search").value = "";
    this.showPane();
    await this.refreshList();
  }

  stop() {
    this.history = null;
    this.peer = null;
    $("log").replaceChildren();
    $("convs").replaceChildren();
  }

  isOpen(peer) {
    return this.peer === peer && !document.hidden;
  }

  // Search -------------------------------------------------------------------

  async find(more) {
    const typed = $("search").value.trim();
    if (!typed) {
      $("results").replaceChildren();
      $("more").hidden = true;
      return;
    }
    // A plain name finds names starting with it; * and ? are wildcards.
    const pattern = /[*?]/.test(typed) ? typed : `${typed}*`;
    if (!more) this.search = { pattern, cursor: null, names: [] };
    const args = { pattern, limit: PAGE_SIZE };
    if (more && this.search.cursor !== null) args.cursor = this.search.cursor;
    try {
      const reply = await this.page.conn.request("list_users", args);
      if (this.search.pattern !== pattern) return; // a newer search started
      this.search.names.push(...reply.users);
      this.search.cursor = reply.cursor;
    } catch (err) {
      $("search-status").textContent = `Search failed: ${err.message || err.code}`;
      return;
    }
    const names = this.search.names;
    $("search-status").textContent = names.length ? `${names.length} found`
      : this.search.cursor !== null ? "None yet; press More results" : "Nobody found";
    renderPeople($("results"), names.map((peer) => ({ peer })), (peer) => this.open(peer));
    $("more").hidden = this.search.cursor === null;
  }

  // Conversations ------------------------------------------------------------

  async refreshList() {
    if (!this.history) return;
    const convs = await this.history.conversations();
    renderPeople($("convs"), convs, (peer) => this.open(peer), { current: this.peer });
    $("no-convs").hidden = convs.length > 0;
  }

  async open(peer) {
    if (!this.history) return;
    this.peer = peer;
    document.body.classList.add("conversation-open");
    await this.history.openConversation(peer);
    this.showPane();
    await Promise.all([this.refreshLog(), this.refreshList()]);
    $("message").focus();
  }

  close() {
    this.peer = null;
    document.body.classList.remove("conversation-open");
    this.showPane();
    this.refreshList();
  }

  showPane() {
    const open = this.peer !== null;
    $("peer-title").textContent = open ? this.peer : "No conversation open";
    $("compose").hidden = !open;
    $("pane-hint").hidden = open;
    $("log").hidden = !open;
    if (!open) $("log").replaceChildren();
  }

  async refreshLog() {
    if (!this.history || this.peer === null) return;
    const peer = this.peer;
    const records = await this.history.conversation(peer);
    if (peer !== this.peer) return;
    renderLog($("log"), records, this.me, (record) => this.outbox.retry(record));
  }

  // Called after a stored change to one of our sends.
  changed(peer) {
    if (peer === this.peer) this.refreshLog();
    this.refreshList();
  }

  // Called after a new message from the server was stored.
  received(message) {
    const peer = message.from === this.me ? message.to : message.from;
    if (peer !== this.peer) {
      $("announce").textContent = `New message from ${message.from}`;
    }
    this.changed(peer);
  }

  async send() {
    const body = $("message").value;
    if (!body.trim() || this.peer === null || !this.outbox) return;
    $("message").value = "";
    await this.outbox.send(this.peer, body);
  }
}
