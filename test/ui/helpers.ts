import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startUiServer, type UiServer, type UiServerOptions } from '#cli/ui/server';
import { catalogue } from '#connectors/registry';
import { loadConfig } from '#core/config/load';
import { editFile, initProject } from '../cli/helpers.ts';

/**
 * A project made by `backflow init`, with a segment, a sync of its members and an update-only sync
 * whose records the CRM refuses (it has no `vip` table to match): rejections to look at.
 */
export async function uiProject(): Promise<string> {
  const dir = await initProject();
  editFile(path.join(dir, 'backflow.yml'), (text) =>
    text
      .replace(
        'destinations:',
        `segments:
  high_value:
    description: customers worth a call
    model: customers
    rules:
      all:
        - { column: ltv, op: gte, value: 900 }

destinations:`,
      )
      .concat(`
  customers-to-vip:
    model: customers
    destination: crm
    object: vip
    mode: update
    match: { customer_id: id }
    mappings:
      email: email
  high-value-to-crm:
    segment: high_value
    destination: crm
    object: high_value
    mode: mirror
    match: { customer_id: id }
`),
  );
  return dir;
}

export function startServer(dir: string, options: Partial<UiServerOptions> = {}): Promise<UiServer> {
  const configFile = path.join(dir, 'backflow.yml');
  return startUiServer({
    configFile,
    cwd: dir,
    loadConfig: async () => loadConfig(configFile, catalogue),
    ...options,
  });
}

/** A JSON request with the token header; returns status and parsed body. */
export async function call(
  server: UiServer,
  route: string,
  init: { method?: string; body?: unknown; token?: string | null } = {},
  // biome-ignore lint/suspicious/noExplicitAny: the tests read the JSON answers loosely
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers['x-backflow-token'] = init.token ?? server.token;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`http://127.0.0.1:${server.port}${route}`, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    redirect: 'manual',
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, body };
}

/**
 * Puts one message on the local dead-letter queue of `crm`, as an older version saved them
 * (`.backflow/dead-letters/<lane>.jsonl`, carried into the embedded store on the next open).
 */
export function deadLetter(dir: string, key: string, runId = '0000000001'): void {
  const message = {
    v: 1,
    syncId: 'customers-to-crm',
    runId,
    version: Number(runId),
    object: 'contacts',
    matchField: 'customer_id',
    fieldTypes: { customer_id: 'integer', plan: 'string' },
    attempt: 9,
    records: [{ key, op: 'upsert', match: Number(key), fields: { plan: 'redriven' }, hash: `h${key}`, isNew: true }],
  };
  mkdirSync(path.join(dir, '.backflow', 'dead-letters'), { recursive: true });
  writeFileSync(path.join(dir, '.backflow', 'dead-letters', 'crm.jsonl'), `${JSON.stringify(message)}\n`);
}
