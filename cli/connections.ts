import path from 'node:path';
import { catalogue } from '#connectors/registry';
import type { DestinationConnection } from '#connectors/sdk/destination';
import type { SourceConnection } from '#connectors/sdk/source';
import type { Config } from '#core/config/load';
import { connectDestination, connectSource } from '#core/connect';
import { AuthError, errorMessage, RateLimitedError, TransientError } from '#core/errors';
import type { Secrets } from '#core/ports';
import { LocalSecrets } from '#core/secrets';
import { hintFor } from './hints.ts';
import type { Style } from './io.ts';

/** Secrets as the local runtime reads them: `BACKFLOW_SECRET_<NAME>`, then `.backflow/secrets.json`. */
export function localSecrets(config: Config): Secrets {
  return new LocalSecrets(path.join(config.projectDir, '.backflow', 'secrets.json'));
}

export const CHECK_TIMEOUT_MS = 30_000;

export interface ConnectionCheck {
  readonly kind: 'source' | 'destination';
  readonly name: string;
  readonly type: string;
  readonly ok: boolean;
  /** What went wrong and what to do about it. */
  readonly error?: string | undefined;
  readonly ms: number;
}

/** Fails with a message after `ms`: a host behind a firewall often never answers. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TransientError(
            `${what}: no answer in ${Math.round(ms / 1000)}s — is the host reachable from here (VPN, firewall, allow-list)?`,
          ),
        ),
      ms,
    );
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error's message, with what to do about it. */
export function actionable(error: unknown, secret: string | undefined): string {
  const message = errorMessage(error);
  const hint = hintFor(message);
  if (hint) return `${message} — ${hint}`;
  if (error instanceof AuthError) {
    return `${message} — check the credentials ${secret ? `in secret "${secret}" (BACKFLOW_SECRET_… or .backflow/secrets.json locally)` : '(this connector has no `secret:`: add one, see docs/config.md#secrets)'}`;
  }
  if (error instanceof RateLimitedError) return `${message} — the destination is throttling: retry later`;
  if (/ECONNREFUSED/.test(message))
    return `${message} — nothing listens there: is the server running, host and port right?`;
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return `${message} — the host name does not resolve: check the host`;
  if (error instanceof TransientError && !/no answer in/.test(message)) {
    return `${message} — is it running and reachable from here? (retrying may help)`;
  }
  return message;
}

/** Connects to a source and checks it; the open connection is returned for further use. */
export async function checkSource(
  config: Config,
  name: string,
  secrets: Secrets,
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<{ check: ConnectionCheck; connection?: SourceConnection }> {
  const connector = config.sources[name]!;
  const started = Date.now();
  let connection: SourceConnection | undefined;
  try {
    connection = await withTimeout(
      connectSource(catalogue, config, name, secrets, 'backflow:check'),
      timeoutMs,
      `source ${name}`,
    );
    await withTimeout(connection.check(), timeoutMs, `source ${name}`);
    return { check: { kind: 'source', name, type: connector.type, ok: true, ms: Date.now() - started }, connection };
  } catch (error) {
    await connection?.close().catch(() => {});
    return {
      check: {
        kind: 'source',
        name,
        type: connector.type,
        ok: false,
        error: actionable(error, connector.secret),
        ms: Date.now() - started,
      },
    };
  }
}

/** Connects to a destination and checks it; the open connection is returned for further use. */
export async function checkDestination(
  config: Config,
  name: string,
  secrets: Secrets,
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<{ check: ConnectionCheck; connection?: DestinationConnection }> {
  const connector = config.destinations[name]!;
  const started = Date.now();
  let connection: DestinationConnection | undefined;
  try {
    connection = await withTimeout(
      connectDestination(catalogue, config, name, secrets, 'backflow:check'),
      timeoutMs,
      `destination ${name}`,
    );
    await withTimeout(connection.check(), timeoutMs, `destination ${name}`);
    return {
      check: { kind: 'destination', name, type: connector.type, ok: true, ms: Date.now() - started },
      connection,
    };
  } catch (error) {
    await connection?.close().catch(() => {});
    return {
      check: {
        kind: 'destination',
        name,
        type: connector.type,
        ok: false,
        error: actionable(error, connector.secret),
        ms: Date.now() - started,
      },
    };
  }
}

/** One aligned line per check: `✔ source warehouse (duckdb)  ok` / `✘ … error`. */
export function formatChecks(checks: readonly ConnectionCheck[], style: Style): string[] {
  const labels = checks.map((c) => `${c.kind} ${c.name} (${c.type})`);
  const width = Math.max(0, ...labels.map((l) => l.length));
  return checks.map((c, i) =>
    c.ok
      ? `${style.green('✔')} ${labels[i]!.padEnd(width)}  ok ${style.dim(`(${c.ms} ms)`)}`
      : `${style.red('✘')} ${labels[i]!.padEnd(width)}  ${style.red(c.error ?? 'failed')}`,
  );
}
