// One WebSocket to one of the instances, moving to the next when it goes away.
//
// Requests get promises; replies match by id. Events go to onEvent. Before
// the state turns "connected", onOpen runs (the page resumes its session and
// catches up there), so nothing else goes out ahead of the resume.

const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 5000;
// No reply for this long: the instance is treated as gone (a silent network
// does not close a WebSocket by itself).
const REQUEST_TIMEOUT_MS = 15000;

export class Disconnected extends Error {
  constructor() { super("not connected"); this.code = "disconnected"; }
}

export class RequestFailed extends Error {
  constructor(reply) {
    super(reply.detail || reply.error);
    this.code = reply.error;
  }
}

export class Connection {
  constructor(urls) {
    this.urls = urls;
    this.index = 0;
    this.url = null;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.avoidUntil = new Map();
    this.waiters = [];
    this.onOpen = async () => {};
    this.onEvent = () => {};
    this.onState = () => {};
  }

  setUrls(urls) {
    const current = this.urls[this.index];
    this.urls = [...new Set(urls)];
    this.index = Math.max(0, this.urls.indexOf(current));
  }

  start() {
    if (this.state === "idle") this._dial();
  }

  // Called on a `shutdown` event: skip this instance for a while, go at once.
  avoid(ms) {
    if (this.url) this.avoidUntil.set(this.url, Date.now() + ms);
    this.attempt = 0;
  }

  whenConnected(timeoutMs) {
    if (this.state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { resolve, timer: setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Disconnected());
      }, timeoutMs) };
      this.waiters.push(waiter);
    });
  }

  request(op, args = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Disconnected());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => ws.close(4000, "request timed out"), REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ op, id, ...args }));
    });
  }

  _setState(state) {
    this.state = state;
    this.onState(state, this.url);
    if (state === "connected") {
      for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.resolve(); }
    }
  }

  _pickUrl() {
    const now = Date.now();
    for (let i = 0; i < this.urls.length; i++) {
      const candidate = (this.index + i) % this.urls.length;
      if ((this.avoidUntil.get(this.urls[candidate]) || 0) <= now) {
        this.index = candidate;
        return this.urls[candidate];
      }
    }
    return this.urls[this.index];
  }

  _dial() {
    const url = this._pickUrl();
    this._setState(this.attempt === 0 && this.url === null ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      console.warn("cannot open", url, err);
      this._retry();
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      this.url = url;
      try {
        await this.onOpen();
      } catch (err) {
        console.warn("session restore on", url, "failed:", err);
        ws.close(4000, "restore failed");
        return;
      }
      if (this.ws === ws && ws.readyState === WebSocket.OPEN) {
        this.attempt = 0;
        this._setState("connected");
      }
    };
    ws.onmessage = (msg) => this._frame(msg.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(new Disconnected()); }
      this.pending.clear();
      this._retry();
    };
  }

  _retry() {
    this._setState("reconnecting");
    this.index = (this.index + 1) % Math.max(1, this.urls.length);
    // The first retry after a working connection goes at once to the next
    // instance; after that, jittered exponential backoff.
    const delay = this.attempt === 0 ? 0
      : Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    setTimeout(() => this._dial(), delay);
  }

  _frame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      console.warn("ignoring a frame that is not JSON");
      return;
    }
    if (typeof frame.event === "string") {
      this.onEvent(frame);
      return;
    }
    const waiting = this.pending.get(frame.id);
    if (!waiting) return;
    this.pending.delete(frame.id);
    clearTimeout(waiting.timer);
    if (frame.ok) waiting.resolve(frame);
    else waiting.reject(new RequestFailed(frame));
  }
}
