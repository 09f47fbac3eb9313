// Rendering. User text only ever goes in through textContent, never as HTML.

import { sortTime } from "./history.js";

const STATUS_TEXT = {
  sending: "Sending…",
  sent: "Sent",
  unconfirmed: "Unconfirmed",
  failed: "Not delivered",
};

export function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function dayLabel(time) {
  const day = new Date(time);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (day.toDateString() === today.toDateString()) return "Today";
  if (day.toDateString() === yesterday.toDateString()) return "Yesterday";
  return day.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long",
    day: "numeric" });
}

function clock(time) {
  return new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageNode(record, me, onRetry) {
  const mine = record.from === me;
  const time = sortTime(record);
  const meta = el("div", { cls: "meta" }, [
    el("time", { text: clock(time), attrs: { datetime: new Date(time).toISOString() } }),
  ]);
  if (mine) {
    const status = STATUS_TEXT[record.status] || record.status;
    const detail = record.status === "failed" && record.error ? `: ${record.error}` : "";
    meta.append(el("span", { cls: `status status-${record.status}`, text: status + detail }));
    if (record.status === "unconfirmed" || record.status === "failed") {
      const retry = el("button", { cls: "link", text: "Retry", attrs: { type: "button" } });
      retry.addEventListener("click", () => onRetry(record));
      meta.append(retry);
    }
  }
  return el("div", { cls: `msg ${mine ? "mine" : "theirs"}`,
    attrs: { "data-msg-id": record.msg_id, "data-status": record.status } }, [
    el("span", { cls: "visually-hidden", text: mine ? "You:" : `${record.from}:` }),
    el("p", { cls: "body", text: record.body }),
    meta,
  ]);
}

// The whole open conversation, day separators between days.
export function renderLog(log, records, me, onRetry, onEarlier) {
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const nodes = [];
  if (onEarlier) {
    const earlier = el("button", { cls: "secondary small earlier", text: "Show earlier messages",
      attrs: { type: "button" } });
    earlier.addEventListener("click", onEarlier);
    nodes.push(earlier);
  }
  let lastDay = null;
  for (const record of records) {
    const day = new Date(sortTime(record)).toDateString();
    if (day !== lastDay) {
      nodes.push(el("div", { cls: "day", text: dayLabel(sortTime(record)),
        attrs: { role: "separator" } }));
      lastDay = day;
    }
    nodes.push(messageNode(record, me, onRetry));
  }
  if (!records.length) {
    nodes.push(el("p", { cls: "empty", text: "No messages yet. Say hello." }));
  }
  log.replaceChildren(...nodes);
  if (nearBottom || records.length < 50) log.scrollTop = log.scrollHeight;
}

// A list of people as buttons named by the user's name (extra text described).
export function renderPeople(list, items, onOpen, { current } = {}) {
  list.replaceChildren(...items.map((item) => {
    const id = `p-${list.id}-${item.peer}`;
    const name = el("span", { cls: "name", text: item.peer, attrs: { id } });
    const children = [name];
    const described = [];
    if (item.unread) {
      children.push(el("span", { cls: "badge", text: String(item.unread),
        attrs: { id: `${id}-unread`, "aria-label": `${item.unread} unread` } }));
      described.push(`${id}-unread`);
    }
    if (item.last !== undefined) {
      const prefix = item.mine ? "You: " : "";
      children.push(el("span", { cls: "last", text: prefix + item.last,
        attrs: { id: `${id}-last` } }));
      described.push(`${id}-last`);
    }
    const button = el("button", { cls: "person", attrs: {
      type: "button", "aria-labelledby": id,
      ...(described.length ? { "aria-describedby": described.join(" ") } : {}),
      ...(item.peer === current ? { "aria-current": "true" } : {}),
    } }, children);
    button.addEventListener("click", () => onOpen(item.peer));
    return el("li", {}, [button]);
  }));
}
