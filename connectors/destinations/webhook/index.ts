import { setTimeout as sleep } from 'node:timers/promises';
import {
  defineDestination,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import {
  AuthError,
  ConnectorConfigError,
  errorMessage,
  RateLimitedError,
  TransientError,
} from '#connectors/sdk/errors';
import { jsonText, toJson, unstorableJson } from '#connectors/sdk/json';
import type { JsonValue } from '#connectors/sdk/types';
import { TAG_HEADER, webhookDestinationManifest } from './manifest.ts';
import { IDEMPOTENCY_HEADER, idempotencyKey, SIGNATURE_HEADER, sign, TIMESTAMP_HEADER } from './signature.ts';

/** Sent as `User-Agent: backflow/<version>`. */
export const USER_AGENT = 'backflow/0.1';
/** `object` of the empty batch `check()` sends; receivers answer it with any 2xx. */
export const CHECK_OBJECT = '__backflow_check__';

/** First in-call backoff; doubles per attempt, with jitter. */
const BACKOFF_BASE_MS = 200;
/** Cap on the total sleeping of one call: a Lambda must not idle waiting for a flapping endpoint. */
const MAX_SLEEP_MS = 2_000;
/** How much of a response body an error message quotes. */
const SNIPPET_CHARS = 200;

type ResultEntry = Record<string, unknown>;

/** The webhook's runtime: signed POSTs behind webhookDestinationManifest (manifest.ts). */
export const webhookDestination = defineDestination(webhookDestinationManifest, {
  async connect(opts, context) {
    const target = new URL(opts.url);
    // Never the path or query: webhook URLs often embed a token (e.g. /hooks/T000/B000/XXXX).
    const where = `webhook ${target.origin}`;
    // The secrets, and extra header values: a secret may fill `headers` too (e.g. an API-key header).
    const secrets = [
      opts.signing_secret,
      opts.bearer_token,
      ...Object.values(opts.headers ?? {}).filter((v) => v.length >= 8),
    ]
      .filter((s): s is string => typeof s === 'string' && s !== '')
      .sort((a, b) => b.length - a.length);
    const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join('[redacted]'), text);
    const snippet = (text: string): string => {
      const short = redact(text).replace(/\s+/g, ' ').trim().slice(0, SNIPPET_CHARS);
      return short === '' ? '' : `: ${short}`;
    };
    if (opts.bearer_token && Object.keys(opts.headers ?? {}).some((h) => h.toLowerCase() === 'authorization')) {
      throw new ConnectorConfigError(
        `${where}: set either the bearer_token secret or an Authorization header, not both`,
      );
    }

    /** Sends one JSON body, retrying transient failures in the call; returns the 2xx response text. */
    const post = async (body: string): Promise<string> => {
      const key = idempotencyKey(body);
      let slept = 0;
      for (let attempt = 1; ; attempt++) {
        const timestamp = Math.floor(Date.now() / 1000);
        const headers: Record<string, string> = {
          ...opts.headers,
          'Content-Type': 'application/json',
          'User-Agent': USER_AGENT,
          [TIMESTAMP_HEADER]: String(timestamp),
          [IDEMPOTENCY_HEADER]: key,
        };
        if (context.tag) headers[TAG_HEADER] = context.tag;
        if (opts.signing_secret) headers[SIGNATURE_HEADER] = sign(opts.signing_secret, timestamp, body);
        if (opts.bearer_token) headers.Authorization = `Bearer ${opts.bearer_token}`;

        let problem: string;
        let cause: unknown;
        try {
          const response = await fetch(opts.url, {
            method: 'POST',
            headers,
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(opts.timeout_ms),
          });
          const text = await response.text();
          const status = response.status;
          if (status >= 200 && status < 300) return text;
          if (status === 429) {
            const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
            const hint = retryAfterMs === undefined ? '' : ` (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)`;
            throw new RateLimitedError(`${where} is rate limiting requests (HTTP 429)${hint}`, retryAfterMs);
          }
          if (status === 401 || status === 403) {
            throw new AuthError(
              `${where} refused the request (HTTP ${status})${snippet(text)}: check signing_secret and bearer_token in the destination's secret`,
            );
          }
          if (status >= 300 && status < 400) {
            throw new ConnectorConfigError(
              `${where} answered a redirect (HTTP ${status}); Backflow does not follow redirects: set url to the final address`,
            );
          }
          if (status === 413) {
            throw new ConnectorConfigError(
              `${where} refused the batch as too large (HTTP 413)${snippet(text)}: lower lane.batch_size`,
            );
          }
          if (status >= 400 && status < 500 && status !== 408) {
            throw new ConnectorConfigError(`${where} refused the request (HTTP ${status})${snippet(text)}`);
          }
          problem = `HTTP ${status}${snippet(text)}`;
        } catch (error) {
          if (error instanceof AuthError || error instanceof RateLimitedError || error instanceof ConnectorConfigError)
            throw error;
          problem = describeNetworkError(error, opts.timeout_ms);
          cause = error;
        }

        const delay = Math.min(
          Math.round(BACKOFF_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)),
          MAX_SLEEP_MS - slept,
        );
        if (attempt >= opts.max_attempts || delay <= 0) {
          throw new TransientError(
            redact(`${where} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${problem}`),
            { cause },
          );
        }
        await sleep(delay);
        slept += delay;
      }
    };

    return {
      async check() {
        await post(JSON.stringify({ object: CHECK_OBJECT, records: [] }));
      },
      async fields() {
        return [];
      },
      async write(batch) {
        const refused: RecordOutcome[] = [];
        const sent: OutboundRecord[] = [];
        const texts: string[] = [];
        for (const record of batch.records) {
          const text = recordJson(record, batch);
          if (typeof text === 'string') {
            sent.push(record);
            texts.push(text);
          } else refused.push({ key: record.key, status: 'rejected', ...text });
        }
        if (sent.length === 0) return refused;
        const body = `{"object":${JSON.stringify(batch.object)},"match_field":${JSON.stringify(batch.matchField)},"records":[${texts.join(',')}]}`;
        return [...refused, ...outcomes(sent, await post(body), redact)];
      },
      async close() {},
    };
  },
});

/**
 * One record of the body as JSON text, built by hand so values arrive exactly: JSON text (a `json`
 * field) is spliced in as it is, numbers beyond a double included, and a negative zero stays `-0`
 * (`JSON.stringify` would write 0). JSON text that does not parse would break the whole body: that
 * record is refused instead.
 */
function recordJson(
  record: OutboundRecord,
  batch: WriteBatch,
): string | { readonly reason: string; readonly field: string } {
  const valueJson = (field: string, value: JsonValue): string | { readonly reason: string; readonly field: string } => {
    if (batch.fieldTypes[field] !== 'json' || value === null) return toJson(value);
    const text = jsonText(value);
    const problem = unstorableJson(text);
    return problem === undefined ? text : { reason: problem, field };
  };
  const match = valueJson(batch.matchField, record.match);
  if (typeof match !== 'string') return match;
  const fields: string[] = [];
  for (const [name, value] of Object.entries(record.fields)) {
    const text = valueJson(name, value);
    if (typeof text !== 'string') return text;
    fields.push(`${JSON.stringify(name)}:${text}`);
  }
  return `{"key":${JSON.stringify(record.key)},"op":${JSON.stringify(record.op)},"match":${match},"fields":{${fields.join(',')}}}`;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no response within ${timeoutMs} ms (timeout_ms)`;
  }
  const cause = error instanceof Error ? error.cause : undefined;
  return `network error: ${cause instanceof Error ? cause.message : errorMessage(error)}`;
}

/** Reads the response contract: no `results` array means every record is ok. */
function outcomes(records: readonly OutboundRecord[], text: string, redact: (s: string) => string): RecordOutcome[] {
  const results = parseResults(text);
  if (!results) return records.map((r) => ({ key: r.key, status: 'ok' }));
  const byKey = new Map<string, ResultEntry>();
  for (const entry of results) {
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
      const e = entry as ResultEntry;
      if (typeof e.key === 'string' && !byKey.has(e.key)) byKey.set(e.key, e);
    }
  }
  return records.map((r) => toOutcome(r.key, byKey.get(r.key), redact));
}

function parseResults(text: string): unknown[] | undefined {
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const results = (parsed as { results?: unknown }).results;
  return Array.isArray(results) ? results : undefined;
}

function toOutcome(key: string, entry: ResultEntry | undefined, redact: (s: string) => string): RecordOutcome {
  if (!entry) return { key, status: 'retry', reason: 'no result for this record' };
  const reason =
    typeof entry.reason === 'string' && entry.reason !== '' ? redact(entry.reason).slice(0, 500) : undefined;
  switch (entry.status) {
    case 'ok': {
      const action =
        entry.action === 'created' || entry.action === 'updated' || entry.action === 'deleted'
          ? entry.action
          : undefined;
      const id = typeof entry.id === 'string' || typeof entry.id === 'number' ? String(entry.id) : undefined;
      return { key, status: 'ok', ...(action && { action }), ...(id !== undefined && { destinationId: id }) };
    }
    case 'rejected':
      return {
        key,
        status: 'rejected',
        reason: reason ?? 'rejected by the webhook',
        ...(typeof entry.field === 'string' && { field: entry.field }),
      };
    case 'retry': {
      const after = entry.retry_after_ms;
      const afterMs = typeof after === 'number' && Number.isFinite(after) && after >= 0 ? Math.round(after) : undefined;
      return {
        key,
        status: 'retry',
        reason: reason ?? 'the webhook asked to retry',
        ...(afterMs !== undefined && { afterMs }),
      };
    }
    default:
      return {
        key,
        status: 'retry',
        reason: `the webhook answered an unknown status ${redact(String(JSON.stringify(entry.status))).slice(0, 50)}`,
      };
  }
}
