import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UiServer } from '#cli/ui/server';
import { call, deadLetter, startServer, uiProject } from './helpers.ts';

/** Every endpoint of `backflow ui`'s JSON API, on one project, in order (the run comes after the reads of an empty state). */
describe('backflow ui: the JSON API', () => {
  let dir: string;
  let server: UiServer;

  beforeAll(async () => {
    dir = await uiProject();
    server = await startServer(dir);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 only and needs the token on every request', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    expect((await call(server, '/api/project', { token: null })).status).toBe(401);
    expect((await call(server, '/api/project', { token: 'x'.repeat(32) })).status).toBe(401);
    // The URL's token sets an HttpOnly cookie, which then suffices.
    const first = await fetch(server.url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
    const withCookie = await fetch(`http://127.0.0.1:${server.port}/api/project`, {
      headers: { cookie: cookie.split(';')[0]! },
    });
    expect(withCookie.status).toBe(200);
    // Another host name (DNS rebinding) is refused even with the token.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/project',
          headers: { host: 'evil.example', 'x-backflow-token': server.token },
        },
        (res) => resolve(res.statusCode!),
      ).end();
    });
    expect(status).toBe(403);
  });

  it('project: the models, segments, destinations and syncs of backflow.yml', async () => {
    const { status, body } = await call(server, '/api/project');
    expect(status).toBe(200);
    expect(body.syncs.map((s: { id: string }) => s.id)).toEqual([
      'customers-to-crm',
      'customers-to-vip',
      'high-value-to-crm',
    ]);
    expect(body.syncs[0]).toMatchObject({ match: { field: 'customer_id', column: 'id' }, mode: 'upsert' });
    expect(body.segments).toEqual(['high_value']);
    expect(body.destinations).toEqual([{ name: 'crm', type: 'duckdb' }]);
  });

  it('models: column types, null share, distinct counts, min/max, a sample; search by key', async () => {
    const { status, body } = await call(server, '/api/models/customers');
    expect(status).toBe(200);
    expect(body).toMatchObject({ model: 'customers', primaryKey: 'id', rowsRead: 50, capped: false });
    const id = body.columns.find((c: { name: string }) => c.name === 'id');
    expect(id).toMatchObject({ type: 'integer', nullShare: 0, distinct: 50, min: 1, max: 50 });
    expect(body.columns.map((c: { name: string }) => c.name)).toEqual([
      'id',
      'email',
      'first_name',
      'last_name',
      'plan',
      'ltv',
      'updated_at',
    ]);
    expect(body.sample).toHaveLength(20);
    const byKey = await call(server, '/api/models/customers?key=7&key=9');
    expect(byKey.body.sample.map((r: { id: number }) => r.id)).toEqual([7, 9]);
    expect((await call(server, '/api/models/nope')).status).toBe(404);
    const bad = await call(server, '/api/models/customers?key=abc');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/primary key "id" is a number/);
  });

  it('preview: row → payload → action, as `backflow preview --json`; unknown sync is a 404', async () => {
    const { status, body } = await call(server, '/api/syncs/customers-to-crm/preview?key=7');
    expect(status).toBe(200);
    expect(body.records).toEqual([
      expect.objectContaining({
        key: '7',
        action: 'create',
        payload: { match: { customer_id: 7 }, fields: expect.objectContaining({ source: 'backflow' }) },
      }),
    ]);
    const unknown = await call(server, '/api/syncs/nope/preview');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/no sync named "nope"/);
    expect((await call(server, '/api/syncs/customers-to-crm/preview?limit=0')).status).toBe(400);
  });

  it('plan: the counts and the guardrail verdict, as `backflow plan --json`', async () => {
    const { status, body } = await call(server, '/api/syncs/customers-to-crm/plan');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      dryRun: true,
      tally: { creates: 50, updates: 0, deletes: 0 },
      verdict: { status: 'pass' },
    });
    expect((await call(server, '/api/syncs/nope/plan')).status).toBe(404);
  });

  it('segments: members now, entering and leaving, a sample with the rule columns', async () => {
    const { status, body } = await call(server, '/api/segments/high_value');
    expect(status).toBe(200);
    expect(body.segments[0]).toMatchObject({ segment: 'high_value', comparedWith: 'high-value-to-crm', leaving: 0 });
    expect(body.segments[0].columns).toEqual(['id', 'ltv']);
    expect(body.segments[0].entering).toBe(body.segments[0].size);
    expect(body.sync).toBe('high-value-to-crm');
    expect((await call(server, '/api/segments')).body.segments).toHaveLength(1);
    expect((await call(server, '/api/segments/nope')).status).toBe(404);
  });

  it('runs: a run started through the API streams its progress to the end', async () => {
    const started = await call(server, '/api/runs', { body: { sync: 'customers-to-crm' } });
    expect(started.status).toBe(200);
    const response = await fetch(`http://127.0.0.1:${server.port}/api/runs/${started.body.id}/events`, {
      headers: { 'x-backflow-token': server.token },
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = (await response.text())
      .split('\n\n')
      .filter(Boolean)
      .map((chunk) => JSON.parse(chunk.replace(/^data: /, '')));
    expect(events.map((e) => e.type)).toContain('plan');
    expect(events.map((e) => e.type)).toContain('export');
    const done = events.find((e) => e.type === 'done' && e.summaries.length > 0);
    expect(done.summaries[0]).toMatchObject({ syncId: 'customers-to-crm', status: 'succeeded' });
    expect((await call(server, '/api/runs', { body: { sync: 'nope' } })).status).toBe(404);
    expect((await call(server, '/api/runs', { body: '[1]' })).status).toBe(400);
    expect((await call(server, '/api/runs/unknown/events')).status).toBe(404);

    const runs = await call(server, '/api/runs?sync=customers-to-crm');
    expect(runs.body.syncs[0].runs[0]).toMatchObject({
      runId: '0000000001',
      status: 'succeeded',
      counters: { created: 50 },
    });
  });

  it('rejections: the refused records with their reasons; dead letters per lane; redrive', async () => {
    const started = await call(server, '/api/runs', { body: { sync: 'customers-to-vip' } });
    await (
      await fetch(`http://127.0.0.1:${server.port}/api/runs/${started.body.id}/events`, {
        headers: { 'x-backflow-token': server.token },
      })
    ).text();
    const { status, body } = await call(server, '/api/syncs/customers-to-vip/rejections');
    expect(status).toBe(200);
    expect(body.total).toBe(50);
    expect(body.rejections[0].reason).toMatch(/no matching record/);
    expect((await call(server, '/api/syncs/nope/rejections')).status).toBe(404);

    expect((await call(server, '/api/deadletters')).body).toEqual({
      where: 'local',
      lanes: [{ destination: 'crm', count: 0, messages: [] }],
    });
    deadLetter(dir, '77');
    const dead = await call(server, '/api/deadletters');
    expect(dead.body.lanes).toEqual([
      {
        destination: 'crm',
        count: 1,
        messages: [{ syncId: 'customers-to-crm', runId: '0000000001', records: 1, keys: ['77'] }],
      },
    ]);
    const redrive = await call(server, '/api/deadletters/crm/redrive', { body: {} });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toMatchObject({ destination: 'crm', moved: 1, deadLettered: 0, delta: { created: 1 } });
    expect((await call(server, '/api/deadletters')).body.lanes[0].count).toBe(0);
    expect((await call(server, '/api/deadletters/nope/redrive', { body: {} })).status).toBe(404);
  });

  it('destinations: fields as discovered, with the model columns that could feed each', async () => {
    const { status, body } = await call(server, '/api/destinations/crm?object=contacts');
    expect(status).toBe(200);
    const email = body.objects[0].fields.find((f: { name: string }) => f.name === 'email');
    expect(email).toMatchObject({ mappedBy: ['customers-to-crm'] });
    expect(email.feeds.map((c: { column: string }) => c.column)).toContain('email');
    expect((await call(server, '/api/destinations/nope')).status).toBe(404);
  });

  it('validate and unknown endpoints', async () => {
    expect((await call(server, '/api/validate')).body).toMatchObject({ ok: true });
    expect((await call(server, '/api/nope')).status).toBe(404);
  });
});
