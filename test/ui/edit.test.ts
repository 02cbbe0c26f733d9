import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UiServer } from '#cli/ui/server';
import { call, startServer, uiProject } from './helpers.ts';

/** The sync editor's endpoint: yaml Document edits, the diff, validation, and the file on disk. */
describe('backflow ui: editing a sync writes backflow.yml', () => {
  let dir: string;
  let server: UiServer;
  const file = () => path.join(dir, 'backflow.yml');
  const yml = () => readFileSync(file(), 'utf8');
  const comments = (text: string) => text.split('\n').filter((l) => l.includes('#'));

  beforeAll(async () => {
    dir = await uiProject();
    server = await startServer(dir);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without save: the diff and the verdict, the file untouched', async () => {
    const before = yml();
    const { status, body } = await call(server, '/api/syncs/customers-to-crm/edit', {
      body: { mappings: { first_name: 'last_name' } },
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, saved: false, issues: [] });
    expect(body.diff).toContain('-      first_name: first_name\n+      first_name: last_name\n');
    expect(body.diff).toMatch(/^--- a\/backflow\.yml\n\+\+\+ b\/backflow\.yml\n@@ -\d+,7 \+\d+,7 @@/);
    expect(yml()).toBe(before);
  });

  it('changing a hashed match column keeps its hashing', async () => {
    const before = yml();
    writeFileSync(
      file(),
      before.replace(
        / {4}match: \{ customer_id: id \}/,
        '    match: { customer_id: { column: id, hash: sha256, normalize: external_id } }',
      ),
    );
    try {
      const { body } = await call(server, '/api/syncs/customers-to-crm/edit', {
        body: { match: { field: 'customer_id', column: 'email' } },
      });
      expect(body.diff).toMatch(/\+ {4}match:.*customer_id.*column: email.*hash: sha256.*normalize: external_id/s);
    } finally {
      writeFileSync(file(), before);
    }
  });

  it('a value equal to the one written is left exactly as written: no diff', async () => {
    const before = yml();
    const { body } = await call(server, '/api/syncs/customers-to-crm/edit', {
      body: {
        mappings: { email: 'email', lifetime_value: { column: 'ltv', nulls: 'sync' } },
        mode: 'upsert',
        save: true,
      },
    });
    expect(body).toEqual({ ok: true, saved: false, diff: '', issues: [] });
    expect(yml()).toBe(before);
  });

  it('with save: only the edited lines change; every comment and the formatting stay', async () => {
    const before = yml();
    const { body } = await call(server, '/api/syncs/customers-to-crm/edit', {
      body: {
        mappings: { first_name: 'last_name', tier: 'plan', source: null },
        schedule: 'rate(1 hour)',
        guardrails: { max_delete_ratio: 0.5 },
        save: true,
      },
    });
    expect(body).toMatchObject({ ok: true, saved: true });
    const after = yml();
    // Every comment is still there, on its line (the removed mapping's own comment went with it).
    expect(comments(after).map((l) => l.slice(l.indexOf('#')))).toEqual(
      comments(before)
        .filter((l) => !l.includes('source: { value: backflow }'))
        .map((l) => l.slice(l.indexOf('#'))),
    );
    expect(after).toContain('    schedule: rate(1 hour)        # on AWS');
    expect(after).toContain('    guardrails: { max_delete_ratio: 0.5 }   # a mirror run');
    expect(after).toContain('      first_name: last_name\n');
    expect(after).toContain('      tier: plan\n');
    expect(after).not.toContain('source: { value: backflow }');
    expect(after).toContain('lifetime_value: { column: ltv, nulls: sync }   # a null clears the destination');
    // The rest of the file is byte for byte what it was.
    const unchanged = (text: string) =>
      text.split('\n').filter((l) => !/first_name: |tier: |source: \{|schedule:|guardrails:|max_delete_ratio/.test(l));
    expect(unchanged(after)).toEqual(unchanged(before));
    const project = await call(server, '/api/project');
    expect(project.body.syncs[0].mappings).toMatchObject({ first_name: 'last_name', tier: 'plan' });
    expect(project.body.syncs[0].schedule).toBe('rate(1 hour)');
  });

  it('an invalid edit leaves the file untouched and says where, with line:column', async () => {
    const before = yml();
    const { status, body } = await call(server, '/api/syncs/customers-to-crm/edit', {
      body: { mode: 'sideways', save: true },
    });
    expect(status).toBe(200);
    expect(body.ok).toBe(false);
    expect(body.saved).toBe(false);
    const modeLine = before.split('\n').findIndex((l) => l.startsWith('    mode: upsert')) + 1;
    expect(body.issues).toEqual([
      expect.objectContaining({
        line: modeLine,
        column: 11,
        path: 'syncs.customers-to-crm.mode',
        message: expect.stringMatching(/upsert/),
      }),
    ]);
    expect(body.diff).toContain('+    mode: sideways');
    expect(yml()).toBe(before);

    // A mapping to a sync's model that does not exist, and a schedule that does not parse.
    const wrong = await call(server, '/api/syncs/customers-to-crm/edit', {
      body: { model: 'nope', schedule: 'every day', save: true },
    });
    expect(wrong.body.ok).toBe(false);
    expect(wrong.body.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      'syncs.customers-to-crm.model',
      'syncs.customers-to-crm.schedule',
    ]);
    for (const issue of wrong.body.issues) expect(issue.line).toBeGreaterThan(1);
    expect(yml()).toBe(before);
  });

  it('bad requests: unknown sync (404), a body that is not a JSON object (400)', async () => {
    const before = yml();
    const unknown = await call(server, '/api/syncs/nope/edit', { body: { mode: 'mirror', save: true } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/no sync named "nope"/);
    expect((await call(server, '/api/syncs/customers-to-crm/edit', { body: 'not json' })).status).toBe(400);
    expect(yml()).toBe(before);
  });
});
