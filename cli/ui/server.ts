import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '#core/config/load';
import { ConfigFileError, errorMessage } from '#core/errors';
import { decodeMessage } from '#core/lane-message';
import { type CliOptions, runCli } from '../app.ts';
import { UsageError } from '../context.ts';
import { memoryIo } from '../io.ts';
import type { ProgressEvent } from '../local-runtime.ts';
import { openLocalState } from '../local-state.ts';
import { editSync } from './edit.ts';
import { feeds, modelReport } from './models.ts';
import type { ApiError, DeadLetters, DestinationFields, Project, RunEvent, SyncEdit, SyncInfo } from './types.ts';

export interface UiServerOptions {
  readonly configFile: string;
  /** Directory the CLI resolves relative paths against. */
  readonly cwd: string;
  readonly port?: number;
  readonly remote?: boolean;
  readonly allowActions?: boolean;
  /** `--stack/--region/--profile` for the remote reads. */
  readonly remoteArgs?: readonly string[];
  readonly remoteClients?: CliOptions['remoteClients'];
  /** The built front end (index.html, app.js, app.css); absent in API-only tests. */
  readonly assets?: () => Promise<{ js: string; css: string }>;
  /** Loads the config (the CLI's loader). */
  readonly loadConfig: () => Promise<Config>;
}

export interface UiServer {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

const COOKIE = 'backflow_ui';

/** An API failure with its HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly issues?: ApiError['issues'],
  ) {
    super(message);
  }
}

interface LiveRun {
  readonly id: string;
  readonly events: RunEvent[];
  done: boolean;
  readonly listeners: Set<(event: RunEvent) => void>;
}

/**
 * `backflow ui`'s server: node:http on 127.0.0.1 only. Every request needs the one-time token,
 * from the URL (`/?token=…` sets an HttpOnly cookie), the cookie, or the `x-backflow-token`
 * header, so other local users (who can reach 127.0.0.1 but not the printed URL) read nothing.
 * Endpoints that mirror a CLI command run that very command in-process with `--json`
 * (`runCli` with a captured Io), so the API and the CLI share their code and their JSON.
 */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const token = randomBytes(24).toString('base64url');
  const runs = new Map<string, LiveRun>();
  // Commands open the embedded store; one at a time keeps them (and a run) from overlapping.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const next = queue.then(task, task);
    queue = next.catch(() => {});
    return next;
  };
  let port = 0;

  const cli = (args: readonly string[]) =>
    serial(async () => {
      const io = memoryIo({ cwd: options.cwd, env: process.env });
      const code = await runCli([...args, '--config', options.configFile, '--json'], {
        io,
        ...(options.remoteClients ? { remoteClients: options.remoteClients } : {}),
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(io.stdout);
      } catch {
        const message = io.stderr.trim().replace(/^backflow \S+: /, '') || `exit ${code}`;
        if (code === 2) throw new HttpError(/^no \w+ named/.test(message) ? 404 : 400, message);
        throw new HttpError(500, message);
      }
      return parsed;
    });
  const remoteFlags = () => (options.remote ? ['--remote', ...(options.remoteArgs ?? [])] : []);

  async function config(): Promise<Config> {
    try {
      return await options.loadConfig();
    } catch (error) {
      if (error instanceof ConfigFileError) throw new HttpError(400, 'backflow.yml is invalid', error.issues);
      throw error;
    }
  }

  function requireSync(cfg: Config, id: string) {
    const sync = cfg.syncs[id];
    if (!sync) throw new HttpError(404, `no sync named "${id}"`);
    return sync;
  }

  async function project(): Promise<Project> {
    const cfg = await config();
    return {
      file: cfg.file,
      remote: options.remote === true,
      allowActions: options.allowActions === true,
      models: Object.entries(cfg.models).map(([name, m]) => ({
        name,
        source: m.source,
        primaryKey: m.primary_key,
        ...(name.startsWith('segment:') ? { segment: name.slice('segment:'.length) } : {}),
      })),
      segments: Object.keys(cfg.segments),
      destinations: Object.values(cfg.destinations).map((d) => ({ name: d.name, type: d.type })),
      syncs: Object.values(cfg.syncs).map(
        (s): SyncInfo => ({
          id: s.id,
          model: s.model,
          segment: s.segment,
          destination: s.destination,
          object: s.object,
          mode: s.mode,
          match: matchOf(s.match),
          mappings: s.mappings,
          schedule: s.schedule,
          guardrails: s.guardrails,
          enabled: s.enabled,
        }),
      ),
    };
  }

  async function destination(name: string, object: string | undefined): Promise<DestinationFields> {
    const cfg = await config();
    if (!cfg.destinations[name]) throw new HttpError(404, `no destination named "${name}"`);
    const fields = (await cli(['fields', name, ...(object ? [object] : [])])) as DestinationFields;
    // The model columns each field could take: the models of the syncs writing there, by type.
    const models = new Set(
      Object.values(cfg.syncs)
        .filter((s) => s.destination === name)
        .map((s) => s.model),
    );
    const columns = await serial(async () => {
      const { catalogue } = await import('#connectors/registry');
      const { connectSource } = await import('#core/connect');
      const { localSecrets } = await import('../connections.ts');
      const out: { model: string; column: string; type: import('#connectors/sdk/types').FieldType }[] = [];
      for (const model of models) {
        const m = cfg.models[model]!;
        const source = await connectSource(catalogue, cfg, m.source, localSecrets(cfg), 'backflow:ui');
        try {
          for (const c of await source.describe(m.sql)) out.push({ model, column: c.name, type: c.type });
        } finally {
          await source.close().catch(() => {});
        }
      }
      return out;
    });
    return {
      ...fields,
      objects: fields.objects.map((o) => ({
        ...o,
        fields: o.fields.map((f) => ({
          ...f,
          feeds: columns.flatMap((c) => {
            const fit = feeds(c.type, f.type);
            return fit.ok ? [{ ...c, ...(fit.note ? { note: fit.note } : {}) }] : [];
          }),
        })),
      })),
    };
  }

  async function deadLetters(): Promise<DeadLetters> {
    const cfg = await config();
    if (options.remote) {
      const status = (await cli(['status', ...remoteFlags()])) as {
        where: string;
        lanes: { destination: string; deadLetters: number }[];
      };
      return {
        where: status.where,
        lanes: status.lanes.map((l) => ({ destination: l.destination, count: l.deadLetters, messages: [] })),
      };
    }
    return serial(async () => {
      const local = await openLocalState(cfg);
      try {
        return {
          where: 'local',
          lanes: Object.keys(cfg.destinations).map((lane) => {
            const bodies = local.deadLetters(lane);
            return {
              destination: lane,
              count: bodies.length,
              messages: bodies.map((body) => {
                try {
                  const m = decodeMessage(body);
                  return {
                    syncId: m.syncId,
                    runId: m.runId,
                    records: m.records.length,
                    keys: m.records.map((r) => r.key),
                  };
                } catch {
                  return { records: 0, keys: [] };
                }
              }),
            };
          }),
        };
      } finally {
        await local.stop();
      }
    });
  }

  /** Starts a run of one sync on the local runtime; its progress is kept for the event stream. */
  async function startRun(body: { sync?: unknown; full?: unknown }): Promise<{ id: string }> {
    const cfg = await config();
    if (typeof body.sync !== 'string') throw new HttpError(400, 'expected { "sync": "<sync id>" }');
    const sync = requireSync(cfg, body.sync);
    if (options.remote) {
      if (!options.allowActions)
        throw new HttpError(403, 'read-only: start the UI with --allow-actions to trigger remote runs');
      await cli(['trigger', sync.id, ...remoteFlags(), ...(body.full === true ? ['--full'] : [])]);
      return { id: '' };
    }
    const id = randomBytes(8).toString('hex');
    const live: LiveRun = { id, events: [], done: false, listeners: new Set() };
    runs.set(id, live);
    const emit = (event: RunEvent) => {
      live.events.push(event);
      for (const listener of live.listeners) listener(event);
    };
    let delivered = 0;
    const onProgress = (event: ProgressEvent) => {
      if (event.type === 'plan') {
        const c = event.result.counters;
        emit({
          type: 'plan',
          syncId: event.syncId,
          status: event.result.status,
          ...(c ? { extracted: c.extracted, queued: c.queued + c.deletesQueued } : {}),
        });
      } else {
        delivered += event.messages - event.failed;
        emit({ type: 'export', lane: event.lane, delivered, pending: event.pending });
      }
    };
    void serial(async () => {
      const { LocalRuntime } = await import('../local-runtime.ts');
      const runtime = await LocalRuntime.start({ config: cfg, onProgress });
      try {
        // As `backflow run <sync>` (runLocally): the real plan and export handlers.
        emit({ type: 'done', summaries: await runtime.run([sync.id], { full: body.full === true, force: false }) });
      } finally {
        await runtime.stop();
      }
    })
      .catch((error) => emit({ type: 'error', error: errorMessage(error) }))
      .finally(() => {
        live.done = true;
        for (const listener of live.listeners) listener({ type: 'done', summaries: [] });
      });
    return { id };
  }

  function streamRun(id: string, res: ServerResponse): void {
    const live = runs.get(id);
    if (!live) throw new HttpError(404, `no run started from the UI with id "${id}"`);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (event: RunEvent) => res.write(`data: ${JSON.stringify(event)}\n\n`);
    for (const event of live.events) send(event);
    if (live.done) {
      res.end();
      return;
    }
    const listener = (event: RunEvent) => {
      if (live.done) {
        live.listeners.delete(listener);
        res.end();
      } else send(event);
    };
    live.listeners.add(listener);
    res.on('close', () => live.listeners.delete(listener));
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<unknown> {
    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    const route = `${method} ${parts[0] ?? ''}${parts.length > 1 ? `/${parts.length}` : ''}`;
    switch (route) {
      case 'GET project':
        return project();
      case 'GET validate':
        return cli(['validate', ...(q.get('remote') === '1' ? ['--remote'] : [])]);
      case 'GET models/2':
        return serial(async () => modelReport(await config(), parts[1]!, q.getAll('key')));
      case 'GET destinations/2':
        return destination(parts[1]!, q.get('object') ?? undefined);
      case 'GET segments':
        return cli(['segments']);
      case 'GET segments/2':
        return segmentReport(parts[1]!);
      case 'GET runs':
        return cli([
          'status',
          ...(q.get('sync') ? [q.get('sync')!] : []),
          '--limit',
          limit(q.get('limit'), 30),
          ...remoteFlags(),
        ]);
      case 'POST runs':
        return startRun((await body(req)) as Record<string, unknown>);
      case 'GET runs/3':
        if (parts[2] !== 'events') break;
        streamRun(parts[1]!, res);
        return undefined;
      case 'GET syncs/3': {
        const id = parts[1]!;
        requireSync(await config(), id);
        if (parts[2] === 'preview') {
          const keys = q.getAll('key').flatMap((k) => ['--key', k]);
          return cli(['preview', id, ...keys, ...(keys.length === 0 ? ['--limit', limit(q.get('limit'), 5)] : [])]);
        }
        if (parts[2] === 'plan') return cli(['plan', id, ...(q.get('full') === '1' ? ['--full'] : [])]);
        if (parts[2] === 'rejections')
          return cli(['rejections', id, '--limit', limit(q.get('limit'), 200), ...remoteFlags()]);
        break;
      }
      case 'POST syncs/3': {
        if (parts[2] !== 'edit') break;
        const edit = (await body(req)) as SyncEdit;
        requireSync(await config(), parts[1]!);
        // backflow.yml is local either way: --remote only changes where runs are read from.
        return editSync(options.configFile, parts[1]!, edit, edit.save === true);
      }
      case 'GET deadletters':
        return deadLetters();
      case 'POST deadletters/3': {
        if (parts[2] !== 'redrive') break;
        const cfg = await config();
        if (!cfg.destinations[parts[1]!]) throw new HttpError(404, `no destination named "${parts[1]}"`);
        if (options.remote && !options.allowActions) {
          throw new HttpError(403, 'read-only: start the UI with --allow-actions to redrive on the stack');
        }
        return cli(['redrive', parts[1]!, ...remoteFlags()]);
      }
    }
    throw new HttpError(404, `no endpoint ${method} ${url.pathname}`);
  }

  /** `backflow segments <name> --json`, and the runs of the sync reading it (size over time). */
  async function segmentReport(name: string) {
    const cfg = await config();
    if (!cfg.segments[name]) throw new HttpError(404, `no segment named "${name}"`);
    const report = (await cli(['segments', name])) as { segments: unknown[] };
    const sync = Object.values(cfg.syncs).find((s) => s.segment === name);
    const history = sync
      ? ((await cli(['status', sync.id, '--limit', '30', ...remoteFlags()])) as { syncs: unknown[] })
      : undefined;
    return { ...report, sync: sync?.id, history: history?.syncs[0] };
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      const status =
        error instanceof HttpError
          ? error.status
          : error instanceof UsageError
            ? /^no \w+ named/.test(error.message)
              ? 404
              : 400
            : 500;
      const payload: ApiError = {
        error: errorMessage(error),
        ...(error instanceof HttpError && error.issues ? { issues: error.issues } : {}),
      };
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(payload));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    // DNS rebinding: only our own host names.
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) throw new HttpError(403, 'unexpected Host');
    const given = url.searchParams.get('token');
    if (given !== null && url.pathname === '/' && same(given, token)) {
      res.writeHead(303, {
        location: '/',
        'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    if (!authorized(req)) throw new HttpError(401, 'missing or wrong token: open the address `backflow ui` printed');
    const security = {
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'",
    };
    if (url.pathname.startsWith('/api/')) {
      const result = await api(req, res, url);
      if (result === undefined) return;
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        ...security,
      });
      res.end(JSON.stringify(result));
      return;
    }
    if (!options.assets) throw new HttpError(404, 'the front end is not served here');
    const assets = await options.assets();
    if (url.pathname === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', ...security });
      res.end(assets.js);
    } else if (url.pathname === '/app.css') {
      res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', ...security });
      res.end(assets.css);
    } else if (req.method === 'GET' && !url.pathname.includes('.')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...security });
      res.end(INDEX);
    } else throw new HttpError(404, `not found: ${url.pathname}`);
  }

  function authorized(req: IncomingMessage): boolean {
    const header = req.headers['x-backflow-token'];
    if (typeof header === 'string' && same(header, token)) return true;
    const cookie = (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`));
    return cookie !== undefined && same(cookie.slice(COOKIE.length + 1), token);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const INDEX = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backflow</title><link rel="stylesheet" href="/app.css"></head>
<body><div id="app"></div><script type="module" src="/app.js"></script></body>
</html>
`;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function limit(raw: string | null, fallback: number): string {
  const value = Number(raw ?? fallback);
  if (!Number.isInteger(value) || value < 1)
    throw new HttpError(400, `limit expects a positive whole number, got "${raw}"`);
  return String(value);
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1_000_000) throw new HttpError(413, 'request body over 1 MB');
    chunks.push(chunk as Buffer);
  }
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed;
  } catch {
    throw new HttpError(400, 'expected a JSON object body');
  }
}

function matchOf(match: Readonly<Record<string, unknown>>): { field: string; column: string } {
  const [field, column] = Object.entries(match)[0] ?? ['', ''];
  return { field, column: typeof column === 'string' ? column : String((column as { column?: string })?.column ?? '') };
}
