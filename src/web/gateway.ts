// The JSON gateway: one POST /api/<Rpc> per ChatService RPC and GET /api/events (Server-Sent Events)
// for Subscribe. It checks the shape of the JSON and hands the call to a ChatApi (the client library),
// which forwards to the leader and retries across failover. The gateway keeps no chat state.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import type { CallMeta, ChatApi, ChatEvent, Subscription } from './chat-api.js';
import { ApiError, toApiError } from './errors.js';

/** API.md: a request is at most 64 KiB. */
export const maxBodyBytes = 64 * 1024;
const maxIdempotencyKey = 64;

type FieldType = 'string' | 'int' | 'id' | 'bool' | 'ids';

interface Rpc {
  method: Exclude<keyof ChatApi, 'subscribe' | 'members'>;
  auth: boolean;
  fields: Record<string, FieldType>;
}

/** Path segment (the RPC's proto name) → client method and the request's fields. */
export const rpcs: Record<string, Rpc> = {
  Signup: {
    method: 'signup',
    auth: false,
    fields: { username: 'string', nickname: 'string', password: 'string' },
  },
  Login: { method: 'login', auth: false, fields: { username: 'string', password: 'string' } },
  Logout: { method: 'logout', auth: true, fields: {} },
  DeleteAccount: { method: 'deleteAccount', auth: true, fields: { password: 'string' } },
  ListUsers: {
    method: 'listUsers',
    auth: true,
    fields: { pattern: 'string', page: 'int', page_size: 'int' },
  },
  GetSettings: { method: 'getSettings', auth: true, fields: {} },
  UpdateSettings: { method: 'updateSettings', auth: true, fields: { view_limit: 'int' } },
  StartChat: { method: 'startChat', auth: true, fields: { username: 'string' } },
  ListChats: { method: 'listChats', auth: true, fields: {} },
  SendMessage: { method: 'sendMessage', auth: true, fields: { chat_id: 'string', content: 'string' } },
  GetMessages: {
    method: 'getMessages',
    auth: true,
    fields: { chat_id: 'string', before_id: 'id', limit: 'int' },
  },
  ReadMessages: { method: 'readMessages', auth: true, fields: { chat_id: 'string' } },
  MarkRead: { method: 'markRead', auth: true, fields: { chat_id: 'string', up_to_id: 'id' } },
  EditMessage: {
    method: 'editMessage',
    auth: true,
    fields: { chat_id: 'string', message_id: 'id', content: 'string' },
  },
  SetTyping: { method: 'setTyping', auth: true, fields: { chat_id: 'string', typing: 'bool' } },
  DeleteMessages: { method: 'deleteMessages', auth: true, fields: { chat_id: 'string', message_ids: 'ids' } },
};

/** Browsers on other replicas' pages call this gateway directly after a failover, so /api is CORS-open.
 * Auth is a bearer header, never a cookie, so `*` grants nothing a page could not do anyway. */
export const corsHeaders: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, idempotency-key, last-event-id',
  'access-control-max-age': '600',
};

export interface GatewayOptions {
  api: ChatApi;
  logger: Logger;
  /** The HTTP base URL of a member, from its gRPC address; undefined when unknown. */
  httpUrlFor: (grpcAddress: string) => string | undefined;
  /** How often an idle event stream gets a comment line (keeps proxies and the page's watchdog happy). */
  keepaliveMs?: number;
  /** Event streams one token may hold open at once (default 8); more get 429. */
  maxStreamsPerToken?: number;
}

export class Gateway {
  private readonly streams = new Set<ServerResponse>();
  /** Open event streams per token: one session cannot hold the server's connections (or its
   *  subscriptions on the replicas) without bound. */
  private readonly streamsPerToken = new Map<string, number>();

  constructor(private readonly opts: GatewayOptions) {}

  /** Handles /api/*; the caller has matched the prefix. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    for (const [k, v] of Object.entries(corsHeaders)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const name = url.pathname.slice('/api/'.length);
    try {
      if (name === 'events') {
        requireMethod(req, 'GET');
        this.events(req, res, url);
        return;
      }
      if (name === 'members') {
        requireMethod(req, 'GET');
        sendJson(res, 200, { members: this.members() });
        return;
      }
      const rpc = Object.hasOwn(rpcs, name) ? rpcs[name] : undefined;
      if (!rpc) throw new ApiError('NOT_FOUND', `There is no API endpoint /api/${name}.`);
      requireMethod(req, 'POST');
      const meta = callMeta(req);
      if (rpc.auth && !meta.token) {
        throw new ApiError('UNAUTHENTICATED', 'This call needs an "authorization: Bearer <token>" header.');
      }
      const body = parseRequest(await readBody(req), rpc.fields);
      // biome-ignore lint/suspicious/noExplicitAny: the table pairs each method with its own fields.
      const reply = await (this.opts.api[rpc.method] as (r: any, m: CallMeta) => Promise<unknown>).call(
        this.opts.api,
        body,
        meta,
      );
      sendJson(res, 200, reply ?? {});
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.code === 'INTERNAL')
        this.opts.logger.warn({ err, path: url.pathname }, 'web gateway call failed');
      if (res.headersSent) {
        res.end();
        return;
      }
      // After a 413 the rest of the body is unread: close rather than drain it.
      if (apiErr.status === 413) res.setHeader('connection', 'close');
      if (apiErr.retryAfterMs !== undefined) {
        res.setHeader('retry-after', String(Math.ceil(apiErr.retryAfterMs / 1000)));
        res.setHeader('retry-after-ms', String(apiErr.retryAfterMs));
      }
      sendJson(res, apiErr.status, apiErr.toJSON());
    }
  }

  /** The voting members with their HTTP base URLs, for the page's failover list. */
  members(): { address: string; http: string | null }[] {
    return this.opts.api
      .members()
      .map((address) => ({ address, http: this.opts.httpUrlFor(address) ?? null }));
  }

  /** Ends every open event stream (on shutdown; pages then fail over or reconnect). */
  closeStreams(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  /**
   * Subscribe as Server-Sent Events. Each ChatEvent goes out with `id: <index>`, so EventSource's own
   * Last-Event-ID (or `?after_index=` from a page switching replicas) resumes where the page left off.
   * Tokens come from the header, or `?access_token=` because EventSource cannot set headers.
   */
  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const meta = callMeta(req);
    meta.token ??= url.searchParams.get('access_token') || undefined;
    if (!meta.token) throw new ApiError('UNAUTHENTICATED', 'The event stream needs a bearer token.');
    const token = meta.token;
    const max = this.opts.maxStreamsPerToken ?? 8;
    const open = this.streamsPerToken.get(token) ?? 0;
    if (open >= max) {
      throw new ApiError(
        'RESOURCE_EXHAUSTED',
        `This session already has ${max} event streams open; close one before opening another.`,
        undefined,
        5000,
      );
    }
    const afterIndex = Math.max(
      parseIndex(req.headers['last-event-id'], 'Last-Event-ID'),
      parseIndex(url.searchParams.get('after_index') ?? undefined, 'after_index'),
    );
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 1000\n\n');
    this.streams.add(res);
    this.streamsPerToken.set(token, open + 1);

    let lastMembers = '';
    const sendMembers = () => {
      const members = JSON.stringify(this.members());
      if (members !== lastMembers) {
        lastMembers = members;
        res.write(`event: members\ndata: ${members}\n\n`);
      }
    };
    let closed = false;
    let sub: Subscription | undefined;
    const timer = setInterval(() => {
      res.write(': keepalive\n\n');
      sendMembers();
    }, this.opts.keepaliveMs ?? 15_000);
    timer.unref();
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      sub?.close();
      this.streams.delete(res);
      const left = (this.streamsPerToken.get(token) ?? 1) - 1;
      if (left > 0) this.streamsPerToken.set(token, left);
      else this.streamsPerToken.delete(token);
      res.end();
    };
    req.on('close', finish);
    res.on('error', finish);
    try {
      sub = this.opts.api.subscribe({ after_index: afterIndex }, meta, {
        onEvent: (event) => {
          if (closed) return;
          // A typing event carries no id: it is never replayed, so it must not move Last-Event-ID.
          const id = event.typing ? '' : `id: ${event.index}\n`;
          res.write(`${id}data: ${JSON.stringify(normalizeEvent(event))}\n\n`);
          sendMembers();
        },
        onError: (err) => {
          if (closed) return;
          res.write(`event: stream-error\ndata: ${JSON.stringify(toApiError(err).toJSON())}\n\n`);
          finish();
        },
      });
    } catch (err) {
      res.write(`event: stream-error\ndata: ${JSON.stringify(toApiError(err).toJSON())}\n\n`);
      finish();
      return;
    }
    if (closed) {
      sub.close(); // onError ran inside subscribe()
      return;
    }
    Promise.resolve(sub.ready).then(
      () => {
        if (closed) return;
        sendMembers();
        // The stream's starting point: the page resumes from here if the stream breaks before any
        // event, so even a break in the first second loses nothing.
        const start = Math.max(afterIndex, sub?.lastIndex ?? 0);
        const id = start > 0 ? `id: ${start}\n` : '';
        res.write(`${id}event: ready\ndata: ${JSON.stringify({ after_index: start })}\n\n`);
      },
      () => {}, // a failed start is reported through onError
    );
  }
}

/** A ChatEvent as the page sees it: `{index, event: 'message_received', message_received: {...}}`. */
export function normalizeEvent(event: ChatEvent): Record<string, unknown> {
  for (const kind of [
    'message_received',
    'messages_deleted',
    'chat_removed',
    'chat_started',
    'messages_read',
    'message_edited',
    'typing',
  ] as const) {
    if (event[kind]) return { index: event.index, event: kind, [kind]: event[kind] };
  }
  return { index: event.index };
}

function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) {
    throw new ApiError('INVALID_ARGUMENT', `This endpoint takes ${method}, not ${req.method}.`, 405);
  }
}

function callMeta(req: IncomingMessage): CallMeta {
  const meta: CallMeta = {};
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) throw new ApiError('UNAUTHENTICATED', 'The authorization header must be "Bearer <token>".');
    meta.token = m[1];
  }
  const key = req.headers['idempotency-key'];
  if (typeof key === 'string' && key !== '') {
    if (key.length > maxIdempotencyKey) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `The idempotency-key is longer than ${maxIdempotencyKey} characters.`,
      );
    }
    meta.idempotencyKey = key;
  }
  return meta;
}

function parseIndex(raw: string | string[] | undefined, what: string): number {
  if (raw === undefined || raw === '') return 0;
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ApiError('INVALID_ARGUMENT', `${what} must be a non-negative integer log index.`);
  }
  return Number(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBodyBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Stop reading at once: the connection is closed after the reply rather than drained.
    if (size > maxBodyBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(): ApiError {
  return new ApiError('RESOURCE_EXHAUSTED', `The request body is larger than ${maxBodyBytes} bytes.`, 413);
}

/** The request object with exactly the RPC's fields, each of the right type (missing → proto default). */
export function parseRequest(text: string, fields: Record<string, FieldType>): Record<string, unknown> {
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError('INVALID_ARGUMENT', 'The request body is not valid JSON.');
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('INVALID_ARGUMENT', 'The request body must be a JSON object.');
  }
  const input = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(fields)) {
    const v = input[name];
    if (type === 'string') {
      if (v !== undefined && v !== null && typeof v !== 'string') throw badField(name, 'a string');
      out[name] = v ?? '';
    } else if (type === 'int') {
      if (
        v !== undefined &&
        v !== null &&
        !(typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31)
      ) {
        throw badField(name, 'a 32-bit integer');
      }
      out[name] = v ?? 0;
    } else if (type === 'id') {
      if (v !== undefined && v !== null && !isId(v)) throw badField(name, 'a non-negative integer id');
      out[name] = v === undefined || v === null ? 0 : Number(v);
    } else if (type === 'bool') {
      if (v !== undefined && v !== null && typeof v !== 'boolean') throw badField(name, 'true or false');
      out[name] = v ?? false;
    } else {
      const ids = v ?? [];
      if (!Array.isArray(ids) || !ids.every(isId))
        throw badField(name, 'an array of non-negative integer ids');
      out[name] = ids.map(Number);
    }
  }
  return out;
}

function isId(v: unknown): boolean {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0;
  return typeof v === 'string' && /^\d{1,16}$/.test(v) && Number.isSafeInteger(Number(v));
}

function badField(name: string, what: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Field '${name}' must be ${what}.`);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}
