import {
  defineDestination,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { AuthError, ConnectorConfigError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpRefusal } from '#connectors/sdk/http';
import { jsonText, toJson, unstorableJson } from '#connectors/sdk/json';
import type { JsonValue } from '#connectors/sdk/types';
import { TAG_HEADER, webhookDestinationManifest } from './manifest.ts';
import { IDEMPOTENCY_HEADER, idempotencyKey, SIGNATURE_HEADER, sign, TIMESTAMP_HEADER } from './signature.ts';

/** Sent as `User-Agent: backflow/<version>`. */
export const USER_AGENT = 'backflow/0.1';
/** `object` of the empty batch `check()` sends; receivers answer it with any 2xx. */
export const CHECK_OBJECT = '__backflow_check__';

/** Cap on the total sleeping of one call: a Lambda must not idle waiting for a flapping endpoint. */
const MAX_SLEEP_MS = 2_000;
/** How much of a response body an error message quotes. */
const SNIPPET_CHARS = 200;

type ResultEntry = Record<string, unknown>;

/**
 * The webhook's runtime: signed POSTs behind webhookDestinationManifest (manifest.ts), on the SDK's
 * HTTP client (connectors/sdk/http.ts): every attempt takes its slot from the lane's pace, 429 and
 * `Retry-After` slow the lane, network errors, 408 and 5xx are retried within the call, secrets are
 * redacted. Each write() is ONE request, so there is never partial progress to keep: a failure
 * means nothing of the batch was taken.
 */
export const webhookDestination = defineDestination(webhookDestinationManifest, {
  async connect(opts, context) {
    const target = new URL(opts.url);
    // Never the path or query: webhook URLs often embed a token (e.g. /hooks/T000/B000/XXXX).
    const where = `webhook ${target.origin}`;
    if (opts.bearer_token && Object.keys(opts.headers ?? {}).some((h) => h.toLowerCase() === 'authorization')) {
      throw new ConnectorConfigError(
        `${where}: set either the bearer_token secret or an Authorization header, not both`,
      );
    }
    // The secrets, extra header values (a secret may fill `headers`, e.g. an API-key header), and
    // the URL's path and query, which may carry a token.
    const secrets = [
      opts.signing_secret,
      opts.bearer_token,
      ...Object.values(opts.headers ?? {}).filter((v) => v.length >= 8),
      target.pathname.length > 1 || target.search !== '' ? `${target.pathname}${target.search}` : undefined,
    ]
      .filter((s): s is string => typeof s === 'string' && s !== '')
      .sort((a, b) => b.length - a.length);

    const headers: Record<string, string> = {
      ...opts.headers,
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
    };
    if (context.tag) headers[TAG_HEADER] = context.tag;
    if (opts.bearer_token) headers.authorization = `Bearer ${opts.bearer_token}`;

    const http = createHttpClient({
      // The client joins base and path; the fetch below always sends to the configured url as it
      // is (a trailing slash or a query must not change).
      baseUrl: target.origin,
      vendor: where,
      headers,
      secrets,
      timeoutMs: opts.timeout_ms,
      maxAttempts: opts.max_attempts,
      maxSleepMs: MAX_SLEEP_MS,
      pace: context.pace,
      refusal: (refused) => refusal(refused, where),
      // Every attempt is signed afresh: a new timestamp and its signature, the same body and key.
      fetch: (_url, init) => {
        const timestamp = Math.floor(Date.now() / 1000);
        const signed: Record<string, string> = {
          ...(init?.headers as Record<string, string>),
          [TIMESTAMP_HEADER]: String(timestamp),
        };
        if (opts.signing_secret) signed[SIGNATURE_HEADER] = sign(opts.signing_secret, timestamp, String(init?.body));
        return fetch(opts.url, { ...init, headers: signed });
      },
    });

    /**
     * Sends one JSON body; returns the 2xx answer. The `Idempotency-Key` (the body's SHA-256) is the
     * same for every attempt and every redelivery of the same batch, so a receiver that dedupes on
     * it applies a batch once: the POST is declared idempotent, and a timeout or a 5xx is retried
     * rather than left unconfirmed.
     */
    const post = async (body: string): Promise<unknown> => {
      const response = await http.request({
        method: 'POST',
        path: '/',
        body,
        headers: { [IDEMPOTENCY_HEADER]: idempotencyKey(body) },
        idempotent: true,
      });
      return response.body;
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
        return [...refused, ...outcomes(sent, await post(body), http.redact)];
      },
      async close() {},
    };
  },
});

/**
 * The webhook's own reading of a refusal (docs/destinations/webhook.md, "Response contract"),
 * before the SDK's defaults: 401/403 name the secrets to check; a redirect, 413 and any other 4xx
 * are configuration errors. 408, 429 and 5xx are left to the client (retry, rate limit).
 */
function refusal({ status, snippet }: HttpRefusal, where: string): Error | undefined {
  const quoted = quote(snippet);
  if (status === 401 || status === 403) {
    return new AuthError(
      `${where} refused the request (HTTP ${status})${quoted}: check signing_secret and bearer_token in the destination's secret`,
    );
  }
  if (status >= 300 && status < 400) {
    return new ConnectorConfigError(
      `${where} answered a redirect (HTTP ${status}); Backflow does not follow redirects: set url to the final address`,
    );
  }
  if (status === 413) {
    return new ConnectorConfigError(
      `${where} refused the batch as too large (HTTP 413)${quoted}: lower lane.batch_size`,
    );
  }
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new ConnectorConfigError(`${where} refused the request (HTTP ${status})${quoted}`);
  }
  return undefined;
}

/** A redacted snippet (the client redacts it) on one line, at most SNIPPET_CHARS. */
function quote(snippet: string): string {
  const short = snippet.replace(/\s+/g, ' ').trim().slice(0, SNIPPET_CHARS);
  return short === '' ? '' : `: ${short}`;
}

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
  // The receiver's own id from the last delivery (its `id` result), when Backflow stored one.
  const id = record.destinationId === undefined ? '' : `,"id":${JSON.stringify(record.destinationId)}`;
  return `{"key":${JSON.stringify(record.key)},"op":${JSON.stringify(record.op)},"match":${match}${id},"fields":{${fields.join(',')}}}`;
}

/** Reads the response contract: no `results` array means every record is ok. */
function outcomes(records: readonly OutboundRecord[], body: unknown, redact: (s: string) => string): RecordOutcome[] {
  const results = resultsOf(body);
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

/** The `results` array of a parsed JSON answer; undefined for an empty, non-JSON or other answer. */
function resultsOf(body: unknown): unknown[] | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const results = (body as { results?: unknown }).results;
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
