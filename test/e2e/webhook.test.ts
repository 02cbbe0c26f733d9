import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRuntime } from '#cli/local-runtime';
import type { JsonValue } from '#connectors/sdk/types';
import { LocalSecrets } from '#core/secrets';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { TestProject } from './project.ts';

describe('the local runtime against a fault-injected webhook', () => {
  let project: TestProject | undefined;
  let runtime: LocalRuntime | undefined;
  let receiver: WebhookReceiver | undefined;
  afterEach(async () => {
    await runtime?.stop();
    await receiver?.stop();
    project?.cleanup();
  });

  it('survives 429 storms and 5xx, reports the refused record, and loses nothing', async () => {
    receiver = await startWebhookReceiver({ signingSecret: 'e2e-signing-secret', rateLimit: 20 });
    project = await TestProject.create({
      customers: 1500,
      destination: `    type: webhook\n    url: ${receiver.url}/hooks/crm\n    secret: hook`,
    });
    await project.sql("update customers set email = 'not-an-email' where id = 7");
    receiver.failNext(4, 429, { 'Retry-After': '1' });
    // Four 503s outlast the connector's three in-call attempts: one batch goes back to SQS.
    receiver.failNext(4, 503);
    const secrets = new LocalSecrets('/nonexistent', {
      BACKFLOW_SECRET_HOOK: JSON.stringify({ signing_secret: 'e2e-signing-secret' }),
    });
    runtime = await project.runtime({ secrets, maxDelaySeconds: 1 });
    const [summary] = await runtime.run(['customers-to-crm']);
    expect(summary!.status).toBe('succeeded');
    expect(summary!.run!.counters).toMatchObject({ queued: 1499, rejected: 1, deadLettered: 0 });
    expect(summary!.run!.counters.created + summary!.run!.counters.updated).toBe(1498);
    expect(receiver.requests.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(4);
    expect(receiver.requests.filter((r) => r.status === 503)).toHaveLength(4);

    const stored = receiver.store.get('contacts')!;
    const expected = (await project.expectedRows()).filter((r) => r.customer_id !== 7);
    for (const row of expected) {
      const fields = stored.get(String(row.customer_id)) as Record<string, JsonValue> | undefined;
      expect(fields, `customer ${row.customer_id}`).toMatchObject({
        email: row.email,
        plan: row.plan,
        lifetime_value: row.lifetime_value,
      });
    }
    expect(stored.has('7')).toBe(false);
    expect(stored.has('42')).toBe(false);
    const state = await runtime.state.getRecords('customers-to-crm', ['7']);
    expect(state.get('7')).toMatchObject({ status: 'rejected', reason: 'email: invalid email' });

    const before = receiver.requestCount;
    const [rerun] = await runtime.run(['customers-to-crm'], { full: true });
    expect(rerun!.run!.counters).toMatchObject({ queued: 0, unchanged: 1499 });
    expect(receiver.requestCount).toBe(before);
  });
});
