// The page's link to the cluster: JSON calls and the event stream, with failover between replicas.
//
// A page's origin cannot change, so when the replica that served it dies the page keeps running and
// calls another member's gateway directly (CORS-enabled absolute URLs, learned from x-members through
// the gateway). Every mutating call carries one idempotency key for all of its retries, so a retry on
// another replica applies nothing twice; the event stream resumes after the last log index it saw.

/** RPCs that change replicated state (ReadMessages marks messages read; Login creates a session).
 * GetMessages is a pure read and SetTyping never enters the log: neither needs a key. */
const MUTATING = new Set([
  'Signup',
  'Login',
  'Logout',
  'DeleteAccount',
  'UpdateSettings',
  'StartChat',
  'SendMessage',
  'ReadMessages',
  'MarkRead',
  'EditMessage',
  'DeleteMessages',
]);

const CALL_TIMEOUT_MS = 10_000;
const CALL_DEADLINE_MS = 30_000;
/** The gateway sends a keepalive every 15 s; silence for longer means the connection is dead. */
const STREAM_SILENCE_MS = 40_000;

/** A rate limit's wait as the gateway sends it (`retry_after_ms`): a positive whole number, else 0. */
function waitOf(value) {
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

export class ApiError extends Error {
  /**
   * @param {string} code @param {string} message @param {number} status
   * @param {number} [retryAfterMs] a rate limit's wait before a retry can work (the gateway's `retry_after_ms`)
   */
  constructor(code, message, status, retryAfterMs) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterMs = waitOf(retryAfterMs);
  }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const hostOf = (base) => base.replace(/^https?:\/\//, '');

export class Transport {
  /**
   * @param {{ onNotice?: (text: string) => void, onMembers?: (bases: string[]) => void }} hooks
   */
  constructor(hooks = {}) {
    this.hooks = hooks;
    /** The gateway in use now; starts as the page's own origin. */
    this.current = location.origin;
    /** Every gateway we know of, in the order to try them. */
    this.bases = [location.origin];
    this.token = null;
    this.lastIndex = 0;
    this.streamAbort = null;
    this.streamRunning = false;
    /** The gateway the page lost, until another one has answered. */
    this.lostFrom = null;
    /** The wait a refused event stream asked for (its `retry_after_ms`), taken by the next retry. */
    this.streamWaitMs = 0;
  }

  /** @param {{address: string, http: string | null}[]} members */
  setMembers(members) {
    const urls = members.map((m) => m.http).filter((u) => typeof u === 'string' && u !== '');
    const next = [...new Set([...this.bases, ...urls])];
    if (next.length !== this.bases.length) {
      this.bases = next;
      this.hooks.onMembers?.(this.bases);
    }
  }

  async loadMembers() {
    try {
      const res = await fetch(`${this.current}/api/members`, {
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      if (res.ok) this.setMembers((await res.json()).members ?? []);
    } catch {
      // The list also arrives on the event stream.
    }
  }

  /** Moves off a gateway that stopped answering (once, however many requests noticed). Nothing is
   * announced yet: the next member may be down too. */
  failover(dead) {
    if (this.current !== dead || this.bases.length < 2) return;
    this.lostFrom ??= dead;
    const at = this.bases.indexOf(dead);
    this.current = this.bases[(at + 1) % this.bases.length];
  }

  /** A request through `base` worked: if the page had lost a gateway, say which, and which one serves. */
  served(base) {
    if (this.lostFrom === null || base !== this.current) return;
    const lost = this.lostFrom;
    this.lostFrom = null;
    if (lost !== base) this.hooks.onNotice?.(`Lost ${hostOf(lost)}; now connected through ${hostOf(base)}.`);
  }

  /** A request that timed out does not prove the gateway is gone (it may be waiting out an election):
   * only move on when it does not answer its health check either. */
  async alive(base) {
    try {
      return (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false;
    }
  }

  /**
   * Calls one RPC. Network failures move to the next member and retry with the same idempotency key;
   * UNAVAILABLE and DEADLINE_EXCEEDED are retried with backoff. Other errors throw an ApiError.
   * @param {string} rpc @param {object} body
   */
  async call(rpc, body = {}) {
    const headers = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (MUTATING.has(rpc)) headers['idempotency-key'] = newKey();
    const deadline = Date.now() + CALL_DEADLINE_MS;
    let lastError = new ApiError('UNAVAILABLE', 'No replica answered.', 503);
    for (let attempt = 0; attempt < 20 && Date.now() < deadline; attempt++) {
      const base = this.current;
      let res;
      try {
        res = await fetch(`${base}/api/${rpc}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
      } catch (err) {
        const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
        if (!timedOut || !(await this.alive(base))) this.failover(base);
        await sleep(Math.min(100 * 2 ** attempt, 1000));
        continue;
      }
      const data = await res.json().catch(() => ({}));
      if (res.ok) {
        this.served(base);
        return data;
      }
      lastError = new ApiError(
        data.code ?? 'UNKNOWN',
        data.message ?? `HTTP ${res.status}`,
        res.status,
        data.retry_after_ms,
      );
      // No leader yet, or the gateway's own deadline ran out: the cluster may be mid-election or busy.
      // The same idempotency key makes another try safe.
      if (lastError.code !== 'UNAVAILABLE' && lastError.code !== 'DEADLINE_EXCEEDED') throw lastError;
      await sleep(Math.min(100 * 2 ** attempt, 1000));
    }
    throw lastError;
  }

  /**
   * Runs the event stream until stopEvents(): reconnects (to another member if this one is gone) and
   * resumes after the last index seen.
   * @param {{ onEvent: (e: object) => void, onReady: () => void, onAuthLost: (message: string) => void }} handlers
   */
  startEvents(handlers) {
    this.stopEvents();
    const ctl = new AbortController();
    this.streamAbort = ctl;
    this.runEvents(handlers, ctl.signal);
  }

  stopEvents() {
    this.streamAbort?.abort();
    this.streamAbort = null;
  }

  async runEvents(handlers, signal) {
    let failures = 0;
    // Bounded by the abort signal (logout) rather than a count: a chat page stays open for hours.
    while (!signal.aborted) {
      const base = this.current;
      // 'lost': the connection failed or broke (move to another member); false: the gateway answered
      // with an error (it is alive; try it again); true: a ready stream ended cleanly.
      const outcome = await this.streamOnce(base, handlers, signal).catch(() => 'lost');
      if (signal.aborted) return;
      if (outcome === true) failures = 0;
      else {
        failures++;
        if (outcome === 'lost') this.failover(base);
      }
      // A refusal that says how long to wait (too many streams open) is not retried sooner.
      await sleep(Math.max(Math.min(200 * 2 ** failures, 3000), this.streamWaitMs));
      this.streamWaitMs = 0;
    }
  }

  /** One stream connection; resolves true if it ended after being ready, false on an HTTP error, and
   * rejects when the connection fails or breaks. */
  async streamOnce(base, handlers, signal) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal.addEventListener('abort', onAbort);
    let watchdog = setTimeout(() => ctl.abort(), STREAM_SILENCE_MS);
    try {
      const res = await fetch(`${base}/api/events?after_index=${this.lastIndex}`, {
        headers: { authorization: `Bearer ${this.token}` },
        signal: ctl.signal,
      });
      if (res.status === 401) {
        const data = await res.json().catch(() => ({}));
        handlers.onAuthLost(data.message ?? 'Your session ended.');
        this.stopEvents();
        return false;
      }
      if (!res.ok) {
        const data = await res.json().catch(() => ({}));
        this.streamWaitMs = waitOf(data.retry_after_ms);
        return false;
      }
      if (!res.body) return false;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let ready = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return ready;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctl.abort(), STREAM_SILENCE_MS);
        buffer += decoder.decode(value, { stream: true });
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const frame = parseFrame(buffer.slice(0, i));
          buffer = buffer.slice(i + 2);
          if (frame.event === 'members') this.setMembers(JSON.parse(frame.data));
          else if (frame.event === 'ready') {
            ready = true;
            const start = JSON.parse(frame.data).after_index;
            if (start > this.lastIndex) this.lastIndex = start;
            this.served(base);
            handlers.onReady();
          } else if (frame.event === 'stream-error') {
            const err = JSON.parse(frame.data);
            if (err.code === 'UNAUTHENTICATED') {
              handlers.onAuthLost(err.message);
              this.stopEvents();
            }
            return ready;
          } else if (frame.data !== undefined && frame.event === undefined) {
            const event = JSON.parse(frame.data);
            // Typing is not in the log: its index is no point to resume from.
            if (event.event !== 'typing' && event.index > this.lastIndex) this.lastIndex = event.index;
            handlers.onEvent(event);
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** @param {string} block @returns {{event?: string, data?: string, id?: string}} */
function parseFrame(block) {
  const frame = {};
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const key = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    frame[key] = frame[key] === undefined ? value : `${frame[key]}\n${value}`;
  }
  return frame;
}
