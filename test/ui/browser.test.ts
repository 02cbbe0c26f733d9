import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frontEnd } from '#cli/ui/bundle';
import type { UiServer } from '#cli/ui/server';
import { deadLetter, startServer, uiProject } from './helpers.ts';

/**
 * `backflow ui` in a real headless browser: Debian's chromium driven by playwright-core (nothing
 * downloads a browser). `.ci/run` installs chromium when it is missing; without it these tests
 * skip with a message, unless BACKFLOW_REQUIRE_BROWSER is set (then they fail).
 * They also take the screenshots of docs/ui.md: BACKFLOW_UI_SCREENSHOTS=docs writes them to docs/ui/*.png.
 */
const CHROMIUM = process.env.BACKFLOW_CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) {
  const message = `browser tests: ${CHROMIUM} not found (apt-get install -y chromium; .ci/run installs it)`;
  if (process.env.BACKFLOW_REQUIRE_BROWSER) throw new Error(`${message}, and BACKFLOW_REQUIRE_BROWSER is set`);
  console.warn(`SKIPPED ${message}`);
}
// The screenshots go to docs/ui/ with BACKFLOW_UI_SCREENSHOTS=docs (to refresh docs/ui.md's), else to a temporary folder.
const SHOTS =
  process.env.BACKFLOW_UI_SCREENSHOTS === 'docs'
    ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/ui')
    : mkdtempSync(path.join(os.tmpdir(), 'backflow-ui-shots-'));

describe.skipIf(!present)('backflow ui in headless chromium', () => {
  let dir: string;
  let server: UiServer;
  let browser: Browser;
  let page: Page;
  const external: string[] = [];
  const yml = () => readFileSync(path.join(dir, 'backflow.yml'), 'utf8');
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (hash: string) => {
    await page.goto(`http://127.0.0.1:${server.port}/#/${hash}`);
    await page.locator('main h1').waitFor();
  };

  beforeAll(async () => {
    dir = await uiProject();
    const built = await frontEnd();
    server = await startServer(dir, { assets: async () => built });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    // A fresh profile per context; laptop width.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    // Nothing leaves 127.0.0.1: any other request is recorded and refused.
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      external.push(url.href);
      return route.abort();
    });
    await page.goto(server.url);
    await page.getByRole('heading', { name: 'Syncs' }).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens with the token (then a cookie) and lists the syncs', async () => {
    expect(page.url()).toBe(`http://127.0.0.1:${server.port}/`);
    await expect(page.getByRole('link', { name: 'customers-to-crm' }).count()).resolves.toBe(1);
    await shot('syncs');
    // Without the cookie, the API refuses.
    const other = await browser.newContext();
    const response = await (await other.newPage()).goto(`http://127.0.0.1:${server.port}/api/project`);
    expect(response?.status()).toBe(401);
    await other.close();
  });

  it('edits a mapping: shows the diff, saves it, and backflow.yml keeps its comments', async () => {
    const before = yml();
    await go('syncs/customers-to-crm/edit');
    const column = page.getByLabel('first_name: column');
    await column.locator('option', { hasText: 'last_name' }).first().waitFor({ state: 'attached' });
    await column.selectOption('last_name');
    await page.getByRole('button', { name: 'Show the diff' }).click();
    const diff = page.locator('pre.diff');
    await diff.waitFor();
    expect(await diff.textContent()).toContain('-      first_name: first_name\n+      first_name: last_name\n');
    expect(yml()).toBe(before);
    await shot('editor');
    await page.getByRole('button', { name: 'Save to backflow.yml' }).click();
    await page.getByText('Saved to backflow.yml.').waitFor();
    const after = yml();
    expect(after).toBe(before.replace('      first_name: first_name\n', '      first_name: last_name\n'));
  });

  it('an invalid edit is refused with line:column and the file is untouched', async () => {
    const before = yml();
    await go('syncs/customers-to-crm/edit');
    await page.getByLabel('Schedule (on AWS; empty: none)').fill('every day');
    await page.getByRole('button', { name: 'Show the diff' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const line = before.split('\n').findIndex((l) => l.startsWith('    schedule:')) + 1;
    expect(await alert.textContent()).toContain(`backflow.yml:${line}:15`);
    await expect(page.getByRole('button', { name: 'Save to backflow.yml' }).isDisabled()).resolves.toBe(true);
    expect(yml()).toBe(before);
  });

  it('previews a record: row → payload → action', async () => {
    await go('syncs/customers-to-crm/preview');
    await page.getByLabel('Primary keys (blank: the first 5)').fill('7');
    await page.getByRole('button', { name: 'Preview' }).click();
    const record = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: /^7 create$/ }) });
    await record.waitFor();
    const text = (await record.textContent()) ?? '';
    expect(text).toContain('"email": "john.backus7@example.com"');
    // The saved edit maps first_name from last_name.
    expect(text).toContain('"first_name": "Backus"');
    await shot('preview');
  });

  it('starts a run and watches it finish, progress streamed', async () => {
    await go('syncs/customers-to-vip/run');
    await page.getByRole('button', { name: 'Start a run' }).click();
    const summary = page.getByRole('region', { name: 'Summary of customers-to-vip' });
    await summary.waitFor({ timeout: 30_000 });
    expect(await summary.textContent()).toMatch(/customers-to-vip: succeeded in [\d.]+ s.*rejected 50/);
    const log = await page.getByRole('list', { name: 'Run progress' }).textContent();
    expect(log).toMatch(/plan customers-to-vip: .*50 read, 50 queued/);
    expect(log).toMatch(/export crm: \d+ message\(s\) delivered/);
    await shot('run');
  });

  it('opens a rejection from the runs page, filtered', async () => {
    await go('runs/customers-to-vip');
    await page.getByText('50 rejected record(s) of 50').waitFor();
    await page.getByRole('table', { name: '25 of 50 shown: filter to narrow' }).waitFor();
    await page.getByLabel('Filter by key, reason or run').fill('7');
    // Keys 7, 17, 27, 37, 47.
    await page.getByRole('table', { name: '5 of 5 shown' }).waitFor();
    await page.getByRole('button', { name: '7', exact: true }).click();
    const detail = page.getByRole('region', { name: 'Rejection of 7' });
    await detail.waitFor();
    expect(await detail.textContent()).toMatch(/no matching record in the destination/);
    await shot('runs');
  });

  it('models, destinations, segments and dead letters render; every control has a label', async () => {
    await go('models/customers');
    await page.getByRole('table', { name: /Columns, over the first 50 row/ }).waitFor();
    await shot('models');
    await go('destinations/crm/contacts');
    await page.getByRole('table', { name: /crm\.contacts \(duckdb\)/ }).waitFor();
    await shot('destinations');
    // A run of the segment's sync, so the segment shows its history.
    await go('syncs/high-value-to-crm/run');
    await page.getByRole('button', { name: 'Start a run' }).click();
    await page.getByRole('region', { name: 'Summary of high-value-to-crm' }).waitFor({ timeout: 30_000 });
    await go('segments/high_value');
    await page.getByRole('table', { name: 'Per run of high-value-to-crm' }).waitFor();
    expect(await page.getByRole('table', { name: 'Per run of high-value-to-crm' }).textContent()).toMatch(
      /0000000001.*Zsucceeded505$/,
    );
    await shot('segments');
    deadLetter(dir, '77', '0000000002');
    await go('deadletters');
    await page.getByRole('cell', { name: 'customers-to-crm run 0000000002: 77' }).waitFor();
    await shot('deadletters');
    await page.getByRole('button', { name: 'Redrive crm' }).click();
    await page.getByText('Redrove 1 message(s) of crm; 0 failed again.').waitFor();
    await page.getByRole('button', { name: 'Redrive crm' }).and(page.locator(':disabled')).waitFor();
    for (const hash of ['syncs/customers-to-crm/edit', 'models/customers', 'runs/customers-to-vip']) {
      await go(hash);
      await page.waitForLoadState('networkidle');
      // A control without a label (a <label>, aria-label, or a button's text): its outerHTML.
      const unlabelled = await page.evaluate<string[]>(`[...document.querySelectorAll('input, select, button')]
        .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent.trim())))
        .map((e) => e.outerHTML)`);
      expect(unlabelled, hash).toEqual([]);
    }
    expect(external).toEqual([]);
  });
});
