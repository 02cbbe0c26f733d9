import { webhookLimits } from '#connectors/destinations/webhook/limits';
import type { JsonValue } from '#connectors/sdk/types';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { conformance } from './suite.ts';

conformance({
  name: 'webhook',
  async start() {
    const receiver = await startWebhookReceiver({ signingSecret: 'conformance-secret' });
    return {
      destination: `    type: webhook\n    url: ${receiver.url}`,
      secret: { signing_secret: 'conformance-secret' },
      fake: {
        stored: (object) => receiver.store.get(object) ?? new Map(),
        writeTimes: () => receiver.requests.filter((r) => r.method === 'POST').map((r) => r.at),
        requestTimes: () => receiver.requestTimes(),
        throttleNext: (n) => receiver.failNext(n, 429, { 'Retry-After': '1' }),
        revoke: () => receiver.revoke(),
        restore: () => receiver.restore(),
        stop: () => receiver.stop(),
      },
    };
  },
  object: 'contacts',
  mapping: `    match: { customer_id: id }
    mappings:
      email: email
      first_name: first_name
      plan: { column: plan, nulls: skip }
      lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    email: row.email as JsonValue,
    first_name: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
  }),
  planField: 'plan',
  ltvField: 'lifetime_value',
  isCleared: (value) => value === null || value === undefined,
  refused: { sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`, reason: /invalid email/ },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('contacts').has(match),
  lane: { requests_per_second: 5, batch_size: 10 },
  // A webhook is the user's own endpoint: no vendor limit, so the documented one is Backflow's
  // default lane rate (limits.ts, docs/destinations/webhook.md#limits), + 1 for a slot boundary.
  documented: { requests: webhookLimits.requestsPerSecond!.value + 1, windowMs: 1000 },
});
