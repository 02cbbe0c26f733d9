import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { UiServer } from '#cli/ui/server';
import { backflow } from '../cli/helpers.ts';
import { call, startServer, uiProject } from './helpers.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/bin.js');

describe('backflow ui: the command', () => {
  const dirs: string[] = [];
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGTERM');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the front end, prints the address with its token, serves the page behind it', async () => {
    const dir = await uiProject();
    dirs.push(dir);
    child = spawn(process.execPath, [BIN, 'ui', '--port', '0'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = /http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+/.exec(out);
        if (found) resolve(found[0]);
      });
      child!.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    // The address answers with a redirect to / that sets the token's cookie (a browser keeps it).
    const first = await fetch(url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const origin = new URL(url).origin;
    const html = await (await fetch(`${origin}/`, { headers: { cookie } })).text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    const js = await fetch(`${origin}/app.js`, { headers: { cookie } });
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeLessThan(100_000);
    expect((await fetch(`${origin}/app.js`)).status).toBe(401);
    const stopped = new Promise((resolve) => child!.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await stopped).toBe(0);
    child = undefined;
  });

  it('--allow-actions without --remote is a usage error', async () => {
    const dir = await uiProject();
    dirs.push(dir);
    const result = await backflow(['ui', '--allow-actions'], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--allow-actions goes with --remote/);
  });

  it('with --remote and without --allow-actions, actions are refused (nothing reaches AWS)', async () => {
    const dir = await uiProject();
    dirs.push(dir);
    let calls = 0;
    const server: UiServer = await startServer(dir, {
      remote: true,
      remoteClients: () => {
        calls++;
        throw new Error('no AWS in this test');
      },
    });
    try {
      const redrive = await call(server, '/api/deadletters/crm/redrive', { body: {} });
      expect(redrive.status).toBe(403);
      expect(redrive.body.error).toMatch(/read-only.*--allow-actions/);
      const run = await call(server, '/api/runs', { body: { sync: 'customers-to-crm' } });
      expect(run.status).toBe(403);
      expect((await call(server, '/api/project')).body).toMatchObject({ remote: true, allowActions: false });
      expect(calls).toBe(0);
    } finally {
      await server.close();
    }
  });
});
