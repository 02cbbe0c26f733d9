import {
  keepProgress,
  type OutboundRecord,
  type RecordOutcome,
  unfinished,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { ConnectorConfigError, RateLimitedError, TransientError } from '#connectors/sdk/errors';
import type { AttributesObject, BrazeClient, SubscriptionChange } from './client.ts';
import { RESERVED_KEYS } from './fields.ts';
import { MAX_SUBSCRIPTION_USERS, MAX_TRACK_OBJECTS } from './limits.ts';
import { ARRAY_PREFIX, MATCH_KEYS, type MatchKey, SUBSCRIPTION_GROUP_PREFIX } from './manifest.ts';
import { chunk, identifierOf, trackOutcomes } from './users.ts';

/**
 * Membership syncs into a Braze subscription group (`subscription_group:<id>`): a user entering is
 * set `subscribed`, one leaving `unsubscribed`, by `external_id` or `email`, with
 * `POST /v2/subscription/status/set` — both states of up to 50 users in one request (two entries of
 * `subscription_groups`). Braze answers `{"message": "success"}` without naming the users it found,
 * so, unless `verify_subscriptions` is false, the users entering are read back with
 * `GET /subscription/status/get` (one request per 50) and one not `Subscribed` is rejected: no
 * Braze user has that identifier (Inferred: the set endpoint creates no user).
 * https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/
 */

/** The subscription group id of a membership object, or undefined for `users`. */
export function subscriptionGroupOf(object: string): string | undefined {
  if (!object.startsWith(SUBSCRIPTION_GROUP_PREFIX)) return undefined;
  const id = object.slice(SUBSCRIPTION_GROUP_PREFIX.length).trim();
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) {
    throw new ConnectorConfigError(
      `Braze: "${object}" needs a subscription group id (Audience > Subscriptions > the group's ID), e.g. subscription_group:pto81fff-734f-80e5-b7b2-b880562888ww`,
    );
  }
  return id;
}

interface Change {
  readonly record: OutboundRecord;
  readonly id: string;
}

const DUPLICATE_WAIT_MS = 1_000;

export async function writeSubscriptions(
  client: BrazeClient,
  batch: WriteBatch,
  groupId: string,
  verify: boolean,
): Promise<RecordOutcome[]> {
  if (!(MATCH_KEYS as readonly string[]).includes(batch.matchField)) {
    throw new ConnectorConfigError(
      `Braze subscription groups take users by ${MATCH_KEYS.join(' or ')}, not "${batch.matchField}": set the sync's match to one of them`,
    );
  }
  const key = batch.matchField as MatchKey;
  const outcomes = new Map<string, RecordOutcome>();
  const changes: (Change & { subscribe: boolean })[] = [];
  const seen = new Set<string>();
  for (const record of batch.records) {
    const id = identifierOf(record, key);
    if (typeof id !== 'string') {
      outcomes.set(record.key, { key: record.key, status: 'rejected', reason: id.problem, field: key });
      continue;
    }
    const folded = key === 'email' ? id.toLowerCase() : id;
    if (seen.has(folded)) {
      // Subscribed and unsubscribed in one request would leave its outcome to Braze's order.
      outcomes.set(record.key, {
        key: record.key,
        status: 'retry',
        reason: `another record of this batch has the same ${key}`,
        afterMs: DUPLICATE_WAIT_MS,
      });
      continue;
    }
    seen.add(folded);
    changes.push({ record, id, subscribe: record.op !== 'delete' });
  }

  const parts = chunk(changes, MAX_SUBSCRIPTION_USERS);
  const written = await keepProgress(
    parts,
    (part) => part.map((c) => c.record.key),
    async (part) => {
      const entry = (subscribe: boolean): SubscriptionChange[] => {
        const ids = part.filter((c) => c.subscribe === subscribe).map((c) => c.id);
        if (ids.length === 0) return [];
        return [
          {
            subscription_group_id: groupId,
            subscription_state: subscribe ? 'subscribed' : 'unsubscribed',
            ...(key === 'external_id' ? { external_ids: ids } : { emails: ids }),
          },
        ];
      };
      await client.setSubscriptions([...entry(true), ...entry(false)]);
      const done: RecordOutcome[] = part
        .filter((c) => !c.subscribe)
        .map((c) => ({ key: c.record.key, status: 'ok', action: 'deleted' }));
      const entering = part.filter((c) => c.subscribe);
      if (!verify || entering.length === 0) {
        return [
          ...done,
          ...entering.map((c): RecordOutcome => ({ key: c.record.key, status: 'ok', action: 'created' })),
        ];
      }
      try {
        const states = await client.subscriptionStates(
          groupId,
          key,
          entering.map((c) => c.id),
        );
        for (const c of entering) {
          const state = states.get(key === 'email' ? c.id.toLowerCase() : c.id) ?? 'Unknown';
          done.push(
            /^subscribed$/i.test(state)
              ? { key: c.record.key, status: 'ok', action: 'created' }
              : {
                  key: c.record.key,
                  status: 'rejected',
                  field: key,
                  reason: `Braze reports ${key} ${c.id} as "${state}" in subscription group ${groupId} after subscribing it: no Braze user has this ${key} (the subscription endpoint creates no user; sync the users first)`,
                },
          );
        }
      } catch (error) {
        // The states were set; only the read-back failed: give the entering users back.
        if (!(error instanceof RateLimitedError || error instanceof TransientError)) throw error;
        done.push(
          ...unfinished(
            entering.map((c) => c.record.key),
            error,
          ),
        );
      }
      return done;
    },
  );
  for (const o of written) outcomes.set(o.key, o);
  return batch.records.map((r) => outcomes.get(r.key) ?? { key: r.key, status: 'retry', reason: 'not sent to Braze' });
}

/**
 * `array:<attribute>:<value>`: membership as a value in an array custom attribute — entering adds
 * the value (`"<attribute>": {"add": [value]}`), leaving removes it (`{"remove": [value]}`), through
 * `/users/track` (75 objects a request). Adding a value already there or removing one absent
 * leaves the array as wanted ("arrays hold unique values"). A user entering who has no profile
 * gets one, as any `/users/track` upsert; leaving sends `_update_existing_only: true`, so it never
 * creates one. https://www.braze.com/docs/api/objects_filters/user_attributes_object/#array-of-strings
 */
export function arrayMembershipOf(object: string): { attribute: string; value: string } | undefined {
  if (!object.startsWith(ARRAY_PREFIX)) return undefined;
  const rest = object.slice(ARRAY_PREFIX.length);
  const at = rest.indexOf(':');
  const attribute = at < 0 ? '' : rest.slice(0, at);
  const value = at < 0 ? '' : rest.slice(at + 1);
  if (!/^[A-Za-z0-9_.-]{1,255}$/.test(attribute) || value === '' || RESERVED_KEYS.has(attribute)) {
    throw new ConnectorConfigError(
      `Braze: "${object}" must be array:<custom attribute>:<value>, e.g. array:segments:vip`,
    );
  }
  return { attribute, value };
}

export async function writeArrayMembership(
  client: BrazeClient,
  batch: WriteBatch,
  target: { attribute: string; value: string },
): Promise<RecordOutcome[]> {
  if (!(MATCH_KEYS as readonly string[]).includes(batch.matchField)) {
    throw new ConnectorConfigError(
      `Braze users are matched on ${MATCH_KEYS.join(' or ')}, not "${batch.matchField}": set the sync's match to one of them`,
    );
  }
  const key = batch.matchField as MatchKey;
  const refused: RecordOutcome[] = [];
  const sendable: { record: OutboundRecord; object: AttributesObject }[] = [];
  for (const record of batch.records) {
    const id = identifierOf(record, key);
    if (typeof id !== 'string') {
      refused.push({ key: record.key, status: 'rejected', reason: id.problem, field: key });
      continue;
    }
    const leaving = record.op === 'delete';
    sendable.push({
      record,
      object: {
        [key]: id,
        ...(leaving ? { _update_existing_only: true } : {}),
        [target.attribute]: { [leaving ? 'remove' : 'add']: [target.value] },
      },
    });
  }
  const sent = await keepProgress(
    chunk(sendable, MAX_TRACK_OBJECTS),
    (run) => run.map((s) => s.record.key),
    async (run) => {
      const objects = run.map((s) => s.object);
      const outcomes = trackOutcomes(
        run.map((s) => s.record),
        objects,
        await client.track(objects),
        client.redact,
      );
      return outcomes.map((o, i) =>
        o.status === 'ok' ? { ...o, action: run[i]!.record.op === 'delete' ? 'deleted' : 'created' } : o,
      );
    },
  );
  const byKey = new Map([...refused, ...sent].map((o) => [o.key, o]));
  return batch.records.map((r) => byKey.get(r.key) ?? { key: r.key, status: 'retry', reason: 'not sent to Braze' });
}
