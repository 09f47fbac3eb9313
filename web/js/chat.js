// The chat screen: people search, conversation list, the open conversation,
// the composer and the delete-account dialog.

import { renderLog, renderPeople } from "./view.js";

const PAGE_SIZE = 20;
const TITLE = "Chat";
// The open conversation renders its newest messages; "Show earlier" adds more.
const SHOWN_AT_FIRST = 300;
const $ = (id) => document.getElementById(id);

export class ChatView {
  constructor({ page }) {
    this.page = page;
    this.history = null;
    this.outbox = null;
    this.me = null;
    this.peer = null;
    this.search = { pattern: null, cursor: null, names: [] };
    this.shown = SHOWN_AT_FIRST;
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
    this.shown = SHOWN_AT_FIRST;
    document.body.classList.remove("conversation-open");
    document.title = TITLE;
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
    const unread = convs.reduce((sum, c) => sum + (c.unread || 0), 0);
    document.title = unread ? `(${unread}) ${TITLE}` : TITLE;
  }

  async open(peer) {
    if (!this.history) return;
    this.peer = peer;
    this.shown = SHOWN_AT_FIRST;
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
    const hidden = Math.max(0, records.length - this.shown);
    renderLog($("log"), records.slice(hidden), this.me, (record) => this.outbox.retry(record),
      hidden ? () => { this.shown += SHOWN_AT_FIRST; this.refreshLog(); } : null);
  }

  // Called after a stored change to one of our sends.
  changed(peer) {
    if (peer === this.peer) this.refreshLog();
    this.refreshList();
  }

  // Called after new messages from the server were stored.
  received(messages) {
    const others = messages.filter((m) => m.from !== this.me && m.from !== this.peer);
    if (others.length === 1) {
      $("announce").textContent = `New message from ${others[0].from}`;
    } else if (others.length > 1) {
      $("announce").textContent = `${others.length} new messages`;
    }
    if (messages.some((m) => m.from === this.peer || m.to === this.peer)) this.refreshLog();
    this.refreshList();
  }

  async send() {
    const body = $("message").value;
    if (!body.trim() || this.peer === null || !this.outbox) return;
    $("message").value = "";
    await this.outbox.send(this.peer, body);
  }
}
