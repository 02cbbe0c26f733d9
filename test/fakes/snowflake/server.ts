import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import { type ColumnEncoder, columnEncoder, type RowTypeEntry } from './encode.ts';
import { checkLoginJwt } from './jwt.ts';

/**
 * A fake Snowflake on 127.0.0.1 and a free port, good enough for the real `snowflake-sdk` driver
 * (see docs/testing.md, "The Snowflake fake"): it answers the driver's REST calls (login with a
 * password or a key-pair JWT, session renewal, heartbeat, telemetry, queries, result chunks, session
 * delete) and runs the SQL on DuckDB. SQL is not translated: callers send the common dialect.
 * `ALTER SESSION SET …` and `USE …` are accepted and only update the session's parameters.
 */

export interface FakeSnowflakeOptions {
  /** Login name → password. Names are matched case-insensitively, like Snowflake's. */
  readonly users: Readonly<Record<string, string>>;
  /** Login name → RSA public key (PEM) for key-pair (`SNOWFLAKE_JWT`) logins. */
  readonly publicKeys?: Readonly<Record<string, string>>;
  /** DuckDB file to run the SQL on; default in memory. */
  readonly duckdbPath?: string;
  /** Rows per result chunk: the first chunk is inline, the rest are downloaded. Default 1000. */
  readonly chunkSize?: number;
  /** Warehouses that exist; a session asking for another one has none (like a missing grant). Default: any. */
  readonly warehouses?: readonly string[];
}

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  status: number;
}

export interface FakeLogin {
  readonly account: string;
  readonly user: string;
  readonly authenticator: string;
  readonly ok: boolean;
  readonly warehouse?: string | undefined;
  readonly role?: string | undefined;
  readonly database?: string | undefined;
  readonly schema?: string | undefined;
  readonly queryTag?: string | undefined;
}

export interface FakeQuery {
  readonly user: string;
  readonly sqlText: string;
  readonly bindings: readonly (string | null)[];
  /** The statement's `QUERY_TAG` parameter, else the session's. */
  readonly queryTag: string | undefined;
  ok: boolean;
  rows: number;
}

export interface FakeSnowflake {
  /** e.g. `http://127.0.0.1:41234`: the driver's `accessUrl`. */
  readonly url: string;
  /** A connection to the fake's DuckDB database, to seed data. */
  readonly db: DuckDBConnection;
  readonly requests: FakeRequest[];
  readonly requestCount: number;
  readonly logins: FakeLogin[];
  readonly queries: FakeQuery[];
  /** Live sessions. */
  readonly sessionCount: number;
  /** Milliseconds every query request waits before it is run (0: none), to simulate a stuck warehouse. */
  queryDelayMs: number;
  /**
   * Statements that ran the SQL (not `ALTER SESSION`/`USE`): what a warehouse bills. Reading a kept
   * result again by query id (`GET /queries/{id}/result`) runs nothing and is not counted.
   */
  readonly executions: number;
  /** Results read again by query id (`GET /queries/{id}/result`), answered or not. */
  readonly resultFetches: { readonly queryId: string; readonly found: boolean }[];
  /** Purges every kept result, as Snowflake does 24 hours after a query ran. */
  expireResults(): void;
  /** Makes every session token expire now: the driver must renew it with its master token. */
  expireSessionTokens(): void;
  stop(): Promise<void>;
}

interface Session {
  readonly id: number;
  readonly account: string;
  readonly user: string;
  token: string;
  readonly masterToken: string;
  readonly warehouse: string | null;
  readonly role: string | null;
  readonly database: string | null;
  readonly schema: string | null;
  readonly params: Map<string, string | number | boolean>;
  duck?: Promise<DuckDBConnection>;
}

/**
 * A statement's result as Snowflake keeps it (24 hours, then purged): its row types and rows, the
 * first chunk inline in answers, the rest downloadable. Chunks are kept as Buffers (outside the JS
 * heap, like a server's storage outside the driver's process) and served as often as asked.
 */
interface KeptResult {
  readonly user: string;
  readonly statementTypeId: number;
  readonly rowtype: RowTypeEntry[];
  /** The first `chunkSize` rows, encoded: the answer's inline `rowset`. */
  readonly inline: Buffer;
  readonly chunks: { body: Buffer; rowCount: number }[];
  readonly total: number;
  /** Date.now() when it ran. */
  readonly at: number;
}

interface Answer {
  status: number;
  body: string;
  contentType: string;
}

/**
 * Bytes of results the fake keeps at most, the oldest purged first (Snowflake keeps every result
 * 24 hours; the fake's memory is not a warehouse's). Tests purge on purpose with `expireResults`.
 */
const MAX_KEPT_BYTES = 512 * 1024 * 1024;

const DEFAULT_PARAMETERS: [string, string | number | boolean][] = [
  ['TIMEZONE', 'America/Los_Angeles'],
  ['TIMESTAMP_OUTPUT_FORMAT', 'YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM'],
  ['TIMESTAMP_NTZ_OUTPUT_FORMAT', 'YYYY-MM-DD HH24:MI:SS.FF3'],
  ['TIMESTAMP_LTZ_OUTPUT_FORMAT', ''],
  ['TIMESTAMP_TZ_OUTPUT_FORMAT', ''],
  ['DATE_OUTPUT_FORMAT', 'YYYY-MM-DD'],
  ['TIME_OUTPUT_FORMAT', 'HH24:MI:SS'],
  ['BINARY_OUTPUT_FORMAT', 'HEX'],
  ['CLIENT_TIMESTAMP_TYPE_MAPPING', 'TIMESTAMP_LTZ'],
  ['CLIENT_RESULT_PREFETCH_SLOTS', 2],
  ['CLIENT_RESULT_PREFETCH_THREADS', 1],
  ['CLIENT_HONOR_CLIENT_TZ_FOR_TIMESTAMP_NTZ', true],
  ['CLIENT_SESSION_KEEP_ALIVE', false],
  ['CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY', 3600],
  ['JS_TREAT_INTEGER_AS_BIGINT', false],
  ['QUERY_CONTEXT_CACHE_SIZE', 5],
  ['STRICT_JSON_OUTPUT', false],
  ['STATEMENT_TIMEOUT_IN_SECONDS', 172800],
  ['QUERY_TAG', ''],
];

const STATEMENT_TYPES: [RegExp, number][] = [
  [/^(select|with|show|describe|desc|values|from|\()/i, 0x1000],
  [/^insert/i, 0x3100],
  [/^update/i, 0x3200],
  [/^delete/i, 0x3300],
  [/^merge/i, 0x3400],
  [/^(alter\s+session|use)\b/i, 0x4000],
];

const json = (body: unknown, status = 200): Answer => ({
  status,
  body: JSON.stringify(body),
  contentType: 'application/json',
});

const failure = (code: string, message: string, data: Record<string, unknown> = {}): Answer =>
  json({ success: false, code, message, data: { ...data, errorCode: code }, headers: null });

/** Snowflake's code and SQL state for a DuckDB error, by its class (`Catalog Error: …`). */
function sqlError(error: unknown): { code: string; sqlState: string; message: string } {
  const text = error instanceof Error ? error.message : String(error);
  if (/^Parser Error/i.test(text))
    return { code: '001003', sqlState: '42000', message: `SQL compilation error:\n${text}` };
  if (/^Binder Error/i.test(text))
    return { code: '000904', sqlState: '42000', message: `SQL compilation error:\n${text}` };
  if (/^(Conversion|Invalid Input|Out of Range) Error/i.test(text))
    return { code: '100038', sqlState: '22018', message: text };
  return { code: '002003', sqlState: '42S02', message: `SQL compilation error:\n${text}` };
}

/** `name = value` pairs of `ALTER SESSION SET a = 'x', b = 2`. */
function sessionAssignments(sql: string): [string, string | number | boolean][] {
  const match = /^alter\s+session\s+set\s+([\s\S]*)$/i.exec(sql);
  if (!match) return [];
  const pairs: [string, string | number | boolean][] = [];
  for (const m of match[1]!.matchAll(/(\w+)\s*=\s*('(?:[^']|'')*'|[^,\s]+)/g)) {
    const raw = m[2]!;
    const value = raw.startsWith("'")
      ? raw.slice(1, -1).replaceAll("''", "'")
      : /^(true|false)$/i.test(raw)
        ? raw.toLowerCase() === 'true'
        : /^-?\d+$/.test(raw)
          ? Number(raw)
          : raw;
    pairs.push([m[1]!.toUpperCase(), value]);
  }
  return pairs;
}

/** Driver bindings (`{"1": {type, value}}`, string values) as DuckDB parameters. */
function duckParams(bindings: unknown): DuckDBValue[] {
  if (!bindings || typeof bindings !== 'object') return [];
  const entries = Object.entries(bindings as Record<string, { type?: string; value?: unknown }>).sort(
    ([a], [b]) => Number(a) - Number(b),
  );
  return entries.map(([, bind]) => {
    const value = bind.value;
    if (value === null || value === undefined) return null;
    const text = String(value);
    switch (bind.type) {
      case 'FIXED':
        return /^-?\d{1,18}$/.test(text) ? BigInt(text) : text;
      case 'REAL':
        return Number(text);
      case 'BOOLEAN':
        return text === '1' || text.toLowerCase() === 'true';
      default:
        return text;
    }
  });
}

function bindingTexts(bindings: unknown): (string | null)[] {
  if (!bindings || typeof bindings !== 'object') return [];
  return Object.entries(bindings as Record<string, { value?: unknown }>)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, bind]) => (bind.value === null || bind.value === undefined ? null : String(bind.value)));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The request body as JSON; the driver gzips it or not depending on a race, so look at the bytes. */
function parseBody(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return JSON.parse(text) as Record<string, unknown>;
}

function tokenOf(req: IncomingMessage): string | undefined {
  return /Snowflake Token="([^"]*)"/.exec(req.headers.authorization ?? '')?.[1];
}

export async function startFakeSnowflake(options: FakeSnowflakeOptions): Promise<FakeSnowflake> {
  const chunkSize = options.chunkSize ?? 1000;
  const instance = await DuckDBInstance.create(options.duckdbPath ?? ':memory:');
  const db = await instance.connect();
  await db.run("SET TimeZone = 'UTC'");
  const openConnections = new Set<DuckDBConnection>([db]);

  const passwords = new Map(Object.entries(options.users).map(([name, pw]) => [name.toUpperCase(), pw]));
  const publicKeys = new Map(Object.entries(options.publicKeys ?? {}).map(([name, k]) => [name.toUpperCase(), k]));
  const warehouses = options.warehouses ? new Set(options.warehouses.map((w) => w.toUpperCase())) : undefined;
  const sessionsByToken = new Map<string, Session>();
  const sessionsByMaster = new Map<string, Session>();
  const sessions = new Set<Session>();
  /** Kept results by query id, oldest first; past `MAX_KEPT_BYTES` the oldest go. */
  const results = new Map<string, KeptResult>();
  const sizeOf = (kept: KeptResult) => kept.inline.length + kept.chunks.reduce((n, c) => n + c.body.length, 0);
  let keptBytes = 0;
  const resultFetches: { queryId: string; found: boolean }[] = [];
  let executions = 0;
  const requests: FakeRequest[] = [];
  const logins: FakeLogin[] = [];
  const queries: FakeQuery[] = [];
  let nextSessionId = 1;
  let baseUrl = '';
  let queryDelayMs = 0;
  const timers = new Set<NodeJS.Timeout>();
  /** Resolves after `ms`; never, once the fake is stopped. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const parameterList = (session: Session) => [...session.params].map(([name, value]) => ({ name, value }));

  const duckFor = (session: Session): Promise<DuckDBConnection> => {
    session.duck ??= instance.connect().then(async (connection) => {
      openConnections.add(connection);
      await connection.run("SET TimeZone = 'UTC'");
      return connection;
    });
    return session.duck;
  };

  const closeSession = async (session: Session) => {
    sessions.delete(session);
    sessionsByToken.delete(session.token);
    sessionsByMaster.delete(session.masterToken);
    if (session.duck) {
      const connection = await session.duck;
      openConnections.delete(connection);
      connection.closeSync();
    }
  };

  const login = (url: URL, body: Record<string, unknown>): Answer => {
    const data = (body.data ?? {}) as Record<string, unknown>;
    const account = String(data.ACCOUNT_NAME ?? '');
    const user = String(data.LOGIN_NAME ?? '');
    const authenticator = String(data.AUTHENTICATOR ?? 'SNOWFLAKE').toUpperCase();
    const sessionParameters = (data.SESSION_PARAMETERS ?? {}) as Record<string, unknown>;
    const requested = (name: string) => url.searchParams.get(name) ?? undefined;
    const record = (ok: boolean) =>
      logins.push({
        account,
        user,
        authenticator,
        ok,
        warehouse: requested('warehouse'),
        role: requested('roleName'),
        database: requested('databaseName'),
        schema: requested('schemaName'),
        queryTag: sessionParameters.QUERY_TAG === undefined ? undefined : String(sessionParameters.QUERY_TAG),
      });
    const key = user.toUpperCase();
    if (authenticator === 'SNOWFLAKE_JWT') {
      const publicKey = publicKeys.get(key);
      const refusal = publicKey ? checkLoginJwt(String(data.TOKEN ?? ''), account, user, publicKey) : 'no public key';
      if (refusal) {
        record(false);
        return failure('390144', 'JWT token is invalid.', { nextAction: 'RETRY_LOGIN', authnMethod: 'KEYPAIR' });
      }
    } else if (!passwords.has(key) || passwords.get(key) !== data.PASSWORD) {
      record(false);
      return failure('390100', 'Incorrect username or password was specified.', {
        nextAction: 'RETRY_LOGIN',
        authnMethod: 'USERNAME_PASSWORD',
      });
    }
    record(true);
    const warehouse = requested('warehouse');
    const session: Session = {
      id: nextSessionId++,
      account,
      user: key,
      token: `session-${randomUUID()}`,
      masterToken: `master-${randomUUID()}`,
      warehouse: warehouse && (!warehouses || warehouses.has(warehouse.toUpperCase())) ? warehouse.toUpperCase() : null,
      role: requested('roleName')?.toUpperCase() ?? 'PUBLIC',
      database: requested('databaseName')?.toUpperCase() ?? null,
      schema: requested('schemaName')?.toUpperCase() ?? null,
      params: new Map(DEFAULT_PARAMETERS),
    };
    for (const [name, value] of Object.entries(sessionParameters)) {
      session.params.set(name.toUpperCase(), value as string | number | boolean);
    }
    sessions.add(session);
    sessionsByToken.set(session.token, session);
    sessionsByMaster.set(session.masterToken, session);
    return json({
      success: true,
      code: null,
      message: null,
      data: {
        token: session.token,
        masterToken: session.masterToken,
        validityInSeconds: 3600,
        masterValidityInSeconds: 14400,
        sessionId: session.id,
        displayUserName: key,
        serverVersion: '9.99.0-fake',
        firstLogin: false,
        healthCheckInterval: 45,
        parameters: parameterList(session),
        sessionInfo: {
          databaseName: session.database,
          schemaName: session.schema,
          warehouseName: session.warehouse,
          roleName: session.role,
        },
      },
    });
  };

  const renew = (req: IncomingMessage): Answer => {
    const session = sessionsByMaster.get(tokenOf(req) ?? '');
    if (!session) return failure('390114', 'Authentication token has expired.  The user must authenticate again.');
    sessionsByToken.delete(session.token);
    session.token = `session-${randomUUID()}`;
    sessionsByToken.set(session.token, session);
    return json({
      success: true,
      data: {
        sessionToken: session.token,
        validityInSecondsST: 3600,
        masterToken: session.masterToken,
        validityInSecondsMT: 14400,
        sessionId: session.id,
      },
    });
  };

  /** Keeps an encoded result under `queryId`: rows are encoded and chunked as they stream. */
  const keepResult = async (
    session: Session,
    queryId: string,
    encoders: ColumnEncoder[],
    rows: AsyncIterable<readonly DuckDBValue[][]>,
    statementTypeId: number,
  ): Promise<KeptResult> => {
    const inline: string[] = [];
    const chunks: { body: Buffer; rowCount: number }[] = [];
    let parts: string[] = [];
    let total = 0;
    for await (const batch of rows) {
      for (const row of batch) {
        const text = JSON.stringify(encoders.map((enc, c) => enc.encode(row[c] ?? null)));
        total++;
        if (total <= chunkSize) {
          inline.push(text);
          continue;
        }
        parts.push(text);
        if (parts.length === chunkSize) {
          chunks.push({ body: Buffer.from(parts.join(',')), rowCount: parts.length });
          parts = [];
        }
      }
    }
    if (parts.length > 0) chunks.push({ body: Buffer.from(parts.join(',')), rowCount: parts.length });
    const kept: KeptResult = {
      user: session.user,
      statementTypeId,
      rowtype: encoders.map((e) => e.rowtype),
      inline: Buffer.from(`[${inline.join(',')}]`),
      chunks,
      total,
      at: Date.now(),
    };
    results.set(queryId, kept);
    keptBytes += sizeOf(kept);
    for (const [id, old] of results) {
      if (keptBytes <= MAX_KEPT_BYTES || id === queryId) break;
      results.delete(id);
      keptBytes -= sizeOf(old);
    }
    return kept;
  };

  /** The answer of a query request, or of a request for a kept result: the same shape. */
  const resultAnswer = (session: Session, queryId: string, kept: KeptResult) => ({
    success: true,
    code: null,
    message: null,
    data: {
      parameters: parameterList(session),
      rowtype: kept.rowtype,
      rowset: JSON.parse(kept.inline.toString('utf8')) as unknown[],
      total: kept.total,
      returned: kept.total,
      queryId,
      databaseProvider: null,
      finalDatabaseName: session.database,
      finalSchemaName: session.schema,
      finalWarehouseName: session.warehouse,
      finalRoleName: session.role,
      numberOfBinds: 0,
      arrayBindSupported: false,
      statementTypeId: kept.statementTypeId,
      version: 1,
      sendResultTime: Date.now(),
      queryResultFormat: 'json',
      ...(kept.chunks.length > 0 && {
        chunks: kept.chunks.map((chunk, index) => ({
          url: `${baseUrl}/chunks/${queryId}/${index}`,
          rowCount: chunk.rowCount,
          uncompressedSize: chunk.body.length,
          compressedSize: chunk.body.length,
        })),
      }),
    },
  });

  async function* once(values: DuckDBValue[][]): AsyncGenerator<DuckDBValue[][]> {
    yield values;
  }

  const statusResult = async (session: Session, queryId: string, statementTypeId: number) => {
    const rowtype: RowTypeEntry = {
      name: 'status',
      type: 'text',
      precision: null,
      scale: null,
      length: 16_777_216,
      byteLength: 16_777_216,
      nullable: true,
      database: '',
      schema: '',
      table: '',
      collation: null,
    };
    const encoder: ColumnEncoder = { rowtype, encode: (v) => String(v) };
    const kept = await keepResult(
      session,
      queryId,
      [encoder],
      once([['Statement executed successfully.']]),
      statementTypeId,
    );
    return resultAnswer(session, queryId, kept);
  };

  const runQuery = async (req: IncomingMessage, body: Record<string, unknown>): Promise<Answer> => {
    const session = sessionsByToken.get(tokenOf(req) ?? '');
    if (!session) return failure('390112', 'Your session has expired. Please login again.');
    const sqlText = String(body.sqlText ?? '')
      .trim()
      .replace(/;\s*$/, '');
    const statementParameters = (body.parameters ?? {}) as Record<string, unknown>;
    const tag = statementParameters.QUERY_TAG ?? session.params.get('QUERY_TAG');
    const query: FakeQuery = {
      user: session.user,
      sqlText,
      bindings: bindingTexts(body.bindings),
      queryTag: tag === undefined || tag === '' ? undefined : String(tag),
      ok: false,
      rows: 0,
    };
    queries.push(query);
    const queryId = randomUUID();
    const statementTypeId = STATEMENT_TYPES.find(([pattern]) => pattern.test(sqlText))?.[1] ?? 0x6000;
    if (/^(alter\s+session|use)\b/i.test(sqlText)) {
      for (const [name, value] of sessionAssignments(sqlText)) session.params.set(name, value);
      for (const m of sqlText.matchAll(/^alter\s+session\s+unset\s+(\w+)/gi)) {
        const name = m[1]!.toUpperCase();
        const fallback = DEFAULT_PARAMETERS.find(([n]) => n === name);
        if (fallback) session.params.set(name, fallback[1]);
        else session.params.delete(name);
      }
      query.ok = true;
      return json(await statusResult(session, queryId, statementTypeId));
    }
    const connection = await duckFor(session);
    executions++;
    try {
      // Streamed from DuckDB and encoded chunk by chunk: the fake never holds the result as rows.
      const result = await connection.stream(sqlText, duckParams(body.bindings));
      const names = result.columnNames();
      const encoders = result.columnTypes().map((type, i) => columnEncoder(names[i]!, type));
      const batches = (async function* () {
        for await (const chunk of result) yield chunk.getRows();
      })();
      const kept = await keepResult(session, queryId, encoders, batches, statementTypeId);
      query.ok = true;
      query.rows = kept.total;
      return json(resultAnswer(session, queryId, kept));
    } catch (error) {
      const { code, sqlState, message } = sqlError(error);
      return failure(code, message, {
        internalError: false,
        sqlState,
        queryId,
        line: -1,
        pos: -1,
        type: 'COMPILATION',
      });
    }
  };

  const handle = async (req: IncomingMessage, request: FakeRequest): Promise<Answer> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    const path = url.pathname;
    if (req.method === 'GET') {
      const chunk = /^\/chunks\/([^/]+)\/(\d+)$/.exec(path);
      if (chunk) {
        // A presigned download: no session token, served as often as asked while the result is kept.
        const body = results.get(chunk[1]!)?.chunks[Number(chunk[2])]?.body;
        if (body === undefined) return { status: 404, body: 'no such chunk', contentType: 'text/plain' };
        return { status: 200, body: body.toString('utf8'), contentType: 'application/octet-stream' };
      }
      const kept = /^\/queries\/([^/]+)\/result$/.exec(path);
      if (kept) {
        const session = sessionsByToken.get(tokenOf(req) ?? '');
        if (!session) return failure('390112', 'Your session has expired. Please login again.');
        const queryId = kept[1]!;
        const stored = results.get(queryId);
        // Results are the user's: another user's query id reads nothing, like a purged one.
        const found = stored !== undefined && stored.user === session.user;
        resultFetches.push({ queryId, found });
        if (!found) {
          return failure('000709', `Statement ${queryId} not found`, { sqlState: '02000', queryId });
        }
        return json(resultAnswer(session, queryId, stored));
      }
      if (/^\/monitoring\/queries\//.test(path)) {
        return json({ success: true, data: { queries: [{ status: 'SUCCESS' }] } });
      }
      return json({ success: false, code: '000404', message: `no such endpoint: ${path}` }, 404);
    }
    if (req.method !== 'POST') return json({ success: false, message: 'method not allowed' }, 405);
    const body = parseBody(raw);
    switch (path) {
      case '/session/v1/login-request':
        return login(url, body);
      case '/session/token-request':
        return renew(req);
      case '/session/heartbeat':
        return sessionsByToken.has(tokenOf(req) ?? '')
          ? json({ success: true, data: null })
          : failure('390112', 'Your session has expired. Please login again.');
      case '/session': {
        const session = sessionsByToken.get(tokenOf(req) ?? '');
        if (!session) return failure('390111', 'Session no longer exists.  New login required to access the service.');
        await closeSession(session);
        return json({ success: true, data: null });
      }
      case '/telemetry/send':
        return json({ success: true, data: null });
      case '/queries/v1/query-request':
        if (queryDelayMs > 0) await sleep(queryDelayMs);
        return runQuery(req, body);
      case '/queries/v1/abort-request':
        return json({ success: true, data: null });
      default:
        request.status = 404;
        return json({ success: false, code: '000404', message: `no such endpoint: ${path}` }, 404);
    }
  };

  const server = createServer((req, res) => {
    const request: FakeRequest = { method: req.method ?? '', path: req.url ?? '', status: 0 };
    requests.push(request);
    handle(req, request)
      .then((answer) => {
        request.status = answer.status;
        res.writeHead(answer.status, { 'content-type': answer.contentType });
        res.end(answer.body);
      })
      .catch((error: unknown) => {
        request.status = 500;
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(error instanceof Error ? error.message : String(error));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    db,
    requests,
    get requestCount() {
      return requests.length;
    },
    logins,
    queries,
    get sessionCount() {
      return sessions.size;
    },
    get queryDelayMs() {
      return queryDelayMs;
    },
    get executions() {
      return executions;
    },
    resultFetches,
    expireResults() {
      results.clear();
      keptBytes = 0;
    },
    set queryDelayMs(ms: number) {
      queryDelayMs = ms;
    },
    expireSessionTokens() {
      for (const [token, session] of [...sessionsByToken]) {
        sessionsByToken.delete(token);
        session.token = `expired-${randomUUID()}`;
      }
    },
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of openConnections) connection.closeSync();
      openConnections.clear();
      instance.closeSync();
    },
  };
}
