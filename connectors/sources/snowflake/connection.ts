import type { Binds, Connection, ConnectionOptions, DataType, RowStatement, SnowflakeError } from 'snowflake-sdk';
import { AuthError, BackflowError, ConnectorConfigError, TransientError } from '#connectors/sdk/errors';

type SnowflakeSdk = typeof import('snowflake-sdk');

let sdk: Promise<SnowflakeSdk> | undefined;

/**
 * Loads and configures `snowflake-sdk` once, on first use, so bundles that never meet a Snowflake
 * source never load it. Cloud platform detection is switched off before the import (it probes
 * metadata addresses at import time); the driver's own logging never writes a file (Lambda's working
 * directory is read-only): its errors go to stderr, the rest is dropped; proxies come from options,
 * not from the environment.
 */
export function loadSnowflakeSdk(): Promise<SnowflakeSdk> {
  process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION ??= 'true';
  sdk ??= import('snowflake-sdk')
    .then((module) => {
      const loaded = ((module as { default?: SnowflakeSdk }).default ?? module) as SnowflakeSdk;
      const drop = () => {};
      loaded.configure({
        logLevel: 'ERROR',
        customLogger: {
          error: (message: string) => process.stderr.write(`snowflake-sdk: ${message}\n`),
          warn: drop,
          info: drop,
          debug: drop,
          trace: drop,
        },
        useEnvProxy: false,
      });
      return loaded;
    })
    .catch((error: unknown) => {
      sdk = undefined;
      throw new ConnectorConfigError(
        `the Snowflake source needs the snowflake-sdk module, which cannot be loaded here: ${(error as Error).message}`,
        { cause: error },
      );
    });
  return sdk;
}

/** What an error message may name: never a secret. */
export interface Who {
  readonly account: string;
  readonly username: string;
  readonly url: string;
}

const SESSION_GONE = new Set(['390111', '390112', '390114']);
const CONFIG_LOGIN = new Set(['390189', '390201', '390202', '390422']);
const TRANSIENT_SQL = new Set(['000604', '000630', '000625', '000623']);

/** A short, secret-free stand-in for a driver error: its causes may hold the login request's body. */
function summary(error: SnowflakeError): Error {
  const summarized = new Error(error.message);
  summarized.name = error.name || 'SnowflakeError';
  Object.assign(summarized, { code: error.code, sqlState: error.sqlState });
  return summarized;
}

function networkCode(error: SnowflakeError): string | undefined {
  const cause = error.cause as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = cause?.code ?? cause?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A driver error as Backflow's: refused credentials → AuthError; network failures, 5xx, timeouts
 * and lost sessions → TransientError; SQL and object errors → ConnectorConfigError with
 * Snowflake's message.
 */
export function translateError(error: unknown, who: Who, doing: string): Error {
  if (error instanceof BackflowError) return error;
  if (!(error instanceof Error)) return new BackflowError(`Snowflake could not ${doing}: ${String(error)}`);
  const e = error as SnowflakeError;
  const code = e.code === undefined ? '' : String(e.code);
  const cause = summary(e);
  const status = (e.response as { statusCode?: number; status?: number } | undefined)?.statusCode;
  const login = `user "${who.username}" on account "${who.account}"`;

  if (SESSION_GONE.has(code)) {
    return new TransientError(`Snowflake session of ${login} expired while trying to ${doing}: ${e.message}`, {
      cause,
    });
  }
  if (CONFIG_LOGIN.has(code)) {
    return new ConnectorConfigError(
      `Snowflake accepted ${login} but refused the session: ${e.message}. Check role, warehouse, database and schema, and the grants of the role.`,
      { cause },
    );
  }
  if (/^39[01]\d\d\d$/.test(code) || /^394\d\d\d$/.test(code)) {
    return new AuthError(
      `Snowflake refused the login of ${login}: ${e.message} (code ${code}). Check the password or private key in the source's secret, and for a key pair that the user's RSA_PUBLIC_KEY matches it.`,
      { cause },
    );
  }
  // Driver-side errors (codes 4xxxxx) and network failures.
  if (code === '401001' || code === '402001' || networkCode(e)) {
    return new TransientError(
      `cannot reach Snowflake at ${who.url} to ${doing}: ${networkCode(e) ?? e.message}. Check account/access_url and the network path (VPC, NAT, private link).`,
      { cause },
    );
  }
  if (code === '401002' || code === '402002') {
    if (status !== undefined && (status >= 500 || status === 408 || status === 429)) {
      return new TransientError(`Snowflake answered HTTP ${status} when trying to ${doing}`, { cause });
    }
    return new ConnectorConfigError(
      `Snowflake at ${who.url} answered HTTP ${status ?? '?'} when trying to ${doing}: check account and access_url`,
      { cause },
    );
  }
  if (code === '405503' || code === '407002' || /disconnected/i.test(e.message)) {
    return new TransientError(`Snowflake connection lost while trying to ${doing}: ${e.message}`, { cause });
  }
  if (
    code === '404026' ||
    code === '404028' ||
    code.startsWith('ERR_OSSL') ||
    /private key|passphrase/i.test(e.message)
  ) {
    return new ConnectorConfigError(
      `the Snowflake private key of ${login} cannot be read: ${e.message}. The secret's private_key must be a PEM (PKCS#8) key, with private_key_passphrase when it is encrypted.`,
      { cause },
    );
  }
  if (/^40[4-9]\d\d\d$/.test(code)) {
    return new ConnectorConfigError(`Snowflake connection options are invalid: ${e.message}`, { cause });
  }
  if (TRANSIENT_SQL.has(code) || e.sqlState?.startsWith('57') || e.sqlState?.startsWith('08')) {
    return new TransientError(`Snowflake was interrupted while trying to ${doing}: ${e.message}`, { cause });
  }
  if (code === '000606') {
    return new ConnectorConfigError(
      `Snowflake has no warehouse to run the query: ${e.message}. Set the source's warehouse option and GRANT USAGE ON WAREHOUSE to the role.`,
      { cause },
    );
  }
  if (e.sqlState || /^\d{6}$/.test(code)) {
    return new ConnectorConfigError(`Snowflake could not ${doing}: ${e.message}`, { cause });
  }
  return new BackflowError(`Snowflake could not ${doing}: ${e.message}`, { cause });
}

/** Options for {@link openSession}, already resolved. */
export interface SessionOptions extends Who {
  readonly connection: ConnectionOptions;
  /** `ALTER SESSION SET` assignments run right after login. */
  readonly sessionParameters: Readonly<Record<string, string | number | boolean>>;
  /**
   * Milliseconds a statement may take before it is given up as transient (and cancelled): the
   * driver retries failed query requests for a very long time, so this bounds an outage.
   */
  readonly deadlineMs?: number | undefined;
}

/**
 * Statements run in array row mode, numbers and semi-structured values (VARIANT, OBJECT, ARRAY) as
 * the server's exact text (see types.ts). The driver takes `Object` and `Array` (its native types of
 * OBJECT and ARRAY columns, which `JSON` does not cover) though its typings do not list them.
 */
const FETCH_AS_STRING = ['Number', 'JSON', 'Object', 'Array'] as unknown as DataType[];

export interface SnowflakeSession {
  /** Runs a statement; its rows are read with {@link SnowflakeSession.rows}. `doing` words errors. */
  execute(sqlText: string, binds?: Binds, doing?: string): Promise<RowStatement>;
  /**
   * The result of a statement that ran earlier (in any session of the user, for 24 hours), by its
   * query id: nothing runs again. Rejects when Snowflake no longer has the result.
   */
  result(queryId: string): Promise<RowStatement>;
  /**
   * The statement's rows as value arrays from row `start` on (0-based; the driver downloads only
   * the chunks from there), streamed with backpressure (one chunk in memory).
   */
  rows(statement: RowStatement, start?: number): AsyncIterable<unknown[]>;
  close(): Promise<void>;
}

function literal(value: string | number | boolean): string {
  return typeof value === 'string' ? `'${value.replaceAll("'", "''")}'` : String(value);
}

export async function openSession(options: SessionOptions): Promise<SnowflakeSession> {
  const snowflake = await loadSnowflakeSdk();
  let connection: Connection;
  try {
    connection = snowflake.createConnection(options.connection);
  } catch (error) {
    throw translateError(error, options, 'connect');
  }
  try {
    await new Promise<void>((resolve, reject) => {
      connection.connect((error) => (error ? reject(error) : resolve()));
    });
  } catch (error) {
    throw translateError(error, options, 'log in');
  }

  const execute = (sqlText: string, binds?: Binds, doing = 'run a query'): Promise<RowStatement> =>
    new Promise<RowStatement>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const statement = connection.execute({
        sqlText,
        ...(binds && { binds }),
        streamResult: true,
        rowMode: 'array',
        fetchAsString: FETCH_AS_STRING,
        complete: (error, done) => {
          clearTimeout(timer);
          if (error) reject(error);
          else resolve(done as RowStatement);
        },
      });
      const deadline = options.deadlineMs;
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          statement.cancel(() => {});
          reject(
            new TransientError(
              `Snowflake did not answer within ${Math.round(deadline / 1000)} s when trying to ${doing} (query_timeout_s plus timeout_ms)`,
            ),
          );
        }, deadline);
      }
    }).catch((error: unknown) => {
      throw translateError(error, options, doing);
    });

  const result = (queryId: string): Promise<RowStatement> =>
    new Promise<RowStatement>((resolve, reject) => {
      connection
        .getResultsFromQueryId({
          queryId,
          streamResult: true,
          rowMode: 'array',
          fetchAsString: FETCH_AS_STRING,
          complete: (error, done) => (error ? reject(error) : resolve(done as RowStatement)),
        } as Parameters<Connection['getResultsFromQueryId']>[0])
        .catch(reject);
    }).catch((error: unknown) => {
      throw translateError(error, options, 'read a kept query result');
    });

  const session: SnowflakeSession = {
    execute,
    result,
    async *rows(statement, start = 0) {
      const stream = statement.streamRows(start > 0 ? { start } : undefined);
      try {
        for await (const row of stream) yield row as unknown[];
      } catch (error) {
        throw translateError(error, options, 'read query results');
      } finally {
        stream.destroy();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!connection.isUp()) return resolve();
        connection.destroy(() => resolve());
      }),
  };

  const assignments = Object.entries(options.sessionParameters);
  if (assignments.length > 0) {
    try {
      await execute(
        `alter session set ${assignments.map(([k, v]) => `${k} = ${literal(v)}`).join(', ')}`,
        undefined,
        'set up the session',
      );
    } catch (error) {
      await session.close();
      throw error;
    }
  }
  return session;
}
