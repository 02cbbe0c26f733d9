import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JsonValue } from '#connectors/sdk/types';

/**
 * A faithful receiver of the webhook destination's contract (docs/destinations/webhook.md), on
 * 127.0.0.1 and a free port. It verifies requests the way the docs tell users to (its own HMAC code,
 * not the connector's), applies batches to an in-memory store and answers per-record results.
 */

export interface WebhookReceiverOptions {
  /** When set, every request must carry a valid `X-Backflow-Signature` (else 401). */
  readonly signingSecret?: string;
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
  readonly bearerToken?: string;
  /** Records per request; more is refused with 413. Default 100. */
  readonly maxBatch?: number;
  /** Requests per second (token bucket, burst = the rate); over it → 429 with `Retry-After`. */
  readonly rateLimit?: number;
  /** Allowed clock drift of `X-Backflow-Timestamp`, in seconds. Default 300. */
  readonly toleranceSeconds?: number;
  /** Replays the stored answer for a repeated `Idempotency-Key` without applying it again. Default true. */
  readonly idempotency?: boolean;
}

export type ReceivedOp = 'upsert' | 'update' | 'insert' | 'delete';

export interface ReceivedRecord {
  readonly key: string;
  readonly op: ReceivedOp;
  readonly match: JsonValue;
  readonly fields: Record<string, JsonValue>;
  /** The receiver's id from the last delivery, when Backflow knows it (docs: `records[].id`). */
  readonly id?: string;
}

/** A batch that passed authentication and shape checks. */
export interface ReceivedBatch {
  readonly object: string;
  readonly matchField: string;
  readonly records: readonly ReceivedRecord[];
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
}

/** Every HTTP request, with the status it was answered. */
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
  /** When it arrived (ms since epoch). */
  readonly at: number;
  status: number;
}

export interface ResultEntry {
  key: string;
  status: 'ok' | 'rejected' | 'retry';
  reason?: string;
  field?: string;
  id?: string;
  action?: 'created' | 'updated' | 'deleted';
  retry_after_ms?: number;
}

export interface WebhookReceiver {
  readonly url: string;
  /** Batches applied (or replayed), in arrival order. */
  readonly received: ReceivedBatch[];
  readonly requests: ReceivedRequest[];
  readonly requestCount: number;
  /** When each request arrived (ms), whatever its answer: 429s, 5xx and check requests included. */
  requestTimes(): number[];
  /** object → match value (strings as is, other values as JSON) → stored fields. */
  readonly store: Map<string, Map<string, Record<string, JsonValue>>>;
  /** Answers the next `n` requests with `status` (and headers/body) before any other check. */
  failNext(n: number, status: number, headers?: Record<string, string>, body?: string): void;
  /** Holds the next `n` requests for `ms` before handling them (they are still applied). */
  delayNext(n: number, ms: number): void;
  /** Refuses every request with 401 until `restore()`, as an endpoint whose token was revoked. */
  revoke(): void;
  restore(): void;
  /** Rewrites the JSON answered for an applied batch; undefined answers `{ results }`. */
  respondWith: ((results: ResultEntry[], batch: ReceivedBatch) => unknown) | undefined;
  stop(): Promise<void>;
}

const OPS = new Set<string>(['upsert', 'update', 'insert', 'delete']);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CHECK_OBJECT = '__backflow_check__';
const MAX_BODY_BYTES = 5 * 1024 * 1024;

interface Failure {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export async function startWebhookReceiver(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const maxBatch = options.maxBatch ?? 100;
  const tolerance = options.toleranceSeconds ?? 300;
  const received: ReceivedBatch[] = [];
  const requests: ReceivedRequest[] = [];
  const store = new Map<string, Map<string, Record<string, JsonValue>>>();
  const ids = new Map<string, Map<string, string>>();
  const answered = new Map<string, { status: number; body: string }>();
  const failures: Failure[] = [];
  const delays: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let nextId = 1;

  const bucket = { tokens: options.rateLimit ?? 0, at: Date.now() };
  const takeToken = (): number | undefined => {
    const rate = options.rateLimit;
    if (rate === undefined) return undefined;
    const now = Date.now();
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
  };

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const apply = (batch: ReceivedBatch): ResultEntry[] => {
    const objectStore = store.get(batch.object) ?? new Map<string, Record<string, JsonValue>>();
    store.set(batch.object, objectStore);
    const objectIds = ids.get(batch.object) ?? new Map<string, string>();
    ids.set(batch.object, objectIds);
    return batch.records.map((record): ResultEntry => {
      const { key } = record;
      if (record.match === null) {
        return { key, status: 'rejected', reason: 'missing match value', field: batch.matchField };
      }
      const invalidEmail =
        (batch.matchField === 'email' && !validEmail(record.match)) ||
        ('email' in record.fields && record.fields.email !== null && !validEmail(record.fields.email));
      if (invalidEmail && record.op !== 'delete') {
        return { key, status: 'rejected', reason: 'invalid email', field: 'email' };
      }
      const id = matchKey(record.match);
      const existing = objectStore.get(id);
      if (record.op === 'delete') {
        const storedId = objectIds.get(id);
        objectStore.delete(id);
        objectIds.delete(id);
        return { key, status: 'ok', action: 'deleted', ...(storedId && { id: storedId }) };
      }
      if (record.op === 'update' && !existing) return { key, status: 'rejected', reason: 'not found' };
      if (record.op === 'insert' && existing) return { key, status: 'rejected', reason: 'exists' };
      objectStore.set(id, merge(existing ?? {}, record.fields));
      if (!objectIds.has(id)) objectIds.set(id, `rec_${nextId++}`);
      return { key, status: 'ok', id: objectIds.get(id)!, action: existing ? 'updated' : 'created' };
    });
  };

  let revoked = false;
  const handle = async (req: IncomingMessage, res: ServerResponse, request: ReceivedRequest): Promise<void> => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      request.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(text);
    };
    const delay = delays.shift();
    if (delay !== undefined) await wait(delay);
    const failure = failures.shift();
    if (failure) return send(failure.status, failure.body, failure.headers);
    if (revoked) return send(401, { error: 'token revoked' });
    if (request.rawBody.length > MAX_BODY_BYTES) return send(413, { error: 'body too large' });
    if (req.method !== 'POST') return send(405, { error: 'only POST' }, { allow: 'POST' });
    const retryAfter = takeToken();
    if (retryAfter !== undefined) return send(429, { error: 'rate limited' }, { 'retry-after': String(retryAfter) });

    if (options.bearerToken !== undefined) {
      const given = req.headers.authorization ?? '';
      if (!sameText(given, `Bearer ${options.bearerToken}`)) return send(401, { error: 'invalid bearer token' });
    }
    if (options.signingSecret !== undefined) {
      const timestamp = header(req.headers, 'x-backflow-timestamp');
      if (!timestamp || !/^\d+$/.test(timestamp)) return send(401, { error: 'missing or malformed timestamp' });
      if (Math.abs(Math.floor(Date.now() / 1000) - Number(timestamp)) > tolerance)
        return send(401, { error: 'timestamp too old' });
      const expected = `v1=${createHmac('sha256', options.signingSecret).update(`${timestamp}.${request.rawBody}`).digest('hex')}`;
      if (!sameText(header(req.headers, 'x-backflow-signature') ?? '', expected))
        return send(401, { error: 'invalid signature' });
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/json'))
      return send(415, { error: 'expected application/json' });

    let payload: unknown;
    try {
      payload = JSON.parse(request.rawBody);
    } catch {
      return send(400, { error: 'body is not JSON' });
    }
    const shape = parseBatch(payload);
    if (typeof shape === 'string') return send(400, { error: shape });
    if (shape.object === CHECK_OBJECT) return send(200, { ok: true });
    if (shape.records.length > maxBatch)
      return send(413, { error: `too many records: ${shape.records.length} > ${maxBatch}` });

    const batch: ReceivedBatch = { ...shape, headers: req.headers, rawBody: request.rawBody };
    received.push(batch);
    const key = header(req.headers, 'idempotency-key');
    const replay = options.idempotency !== false && key ? answered.get(key) : undefined;
    if (replay) return send(replay.status, replay.body);
    const results = apply(batch);
    const body = JSON.stringify(receiver.respondWith ? receiver.respondWith(results, batch) : { results });
    if (options.idempotency !== false && key) answered.set(key, { status: 200, body });
    return send(200, body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawBody: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
        status: 0,
      };
      requests.push(request);
      handle(req, res, request).catch((error: unknown) => {
        request.status = 500;
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}/hooks/backflow`,
    received,
    requests,
    get requestCount() {
      return requests.length;
    },
    requestTimes: () => requests.map((r) => r.at),
    store,
    failNext(n, status, headers = {}, body = '') {
      for (let i = 0; i < n; i++) failures.push({ status, headers, body });
    },
    delayNext(n, ms) {
      for (let i = 0; i < n; i++) delays.push(ms);
    },
    revoke() {
      revoked = true;
    },
    restore() {
      revoked = false;
    },
    respondWith: undefined,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function validEmail(value: JsonValue | undefined): boolean {
  return typeof value === 'string' && EMAIL.test(value);
}

function matchKey(match: JsonValue): string {
  return typeof match === 'string' ? match : JSON.stringify(match);
}

function merge(existing: Record<string, JsonValue>, fields: Record<string, JsonValue>): Record<string, JsonValue> {
  const out = { ...existing };
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) delete out[name];
    else out[name] = value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The request body's shape, or what is wrong with it. */
function parseBatch(payload: unknown): Pick<ReceivedBatch, 'object' | 'matchField' | 'records'> | string {
  if (!isPlainObject(payload)) return 'body must be a JSON object';
  if (typeof payload.object !== 'string' || payload.object === '') return '"object" must be a non-empty string';
  if (!Array.isArray(payload.records)) return '"records" must be an array';
  if (payload.object === CHECK_OBJECT) return { object: payload.object, matchField: '', records: [] };
  if (typeof payload.match_field !== 'string' || payload.match_field === '')
    return '"match_field" must be a non-empty string';
  const records: ReceivedRecord[] = [];
  for (const [i, r] of payload.records.entries()) {
    if (!isPlainObject(r)) return `records[${i}] must be an object`;
    if (typeof r.key !== 'string' || r.key === '') return `records[${i}].key must be a non-empty string`;
    if (typeof r.op !== 'string' || !OPS.has(r.op))
      return `records[${i}].op must be one of upsert, update, insert, delete`;
    if (!('match' in r)) return `records[${i}].match is missing`;
    if (!isPlainObject(r.fields)) return `records[${i}].fields must be an object`;
    if ('id' in r && typeof r.id !== 'string') return `records[${i}].id must be a string`;
    records.push({
      key: r.key,
      op: r.op as ReceivedOp,
      match: r.match as JsonValue,
      fields: r.fields as Record<string, JsonValue>,
      ...(typeof r.id === 'string' && { id: r.id }),
    });
  }
  return { object: payload.object, matchField: payload.match_field, records };
}
