import { defineDestination } from '#connectors/sdk/destination';
import { AuthError, ConnectorConfigError } from '#core/errors';
import { createZendeskClient } from './client.ts';
import { discoverUserFields, fieldNameCheck } from './fields.ts';
import { zendeskLimits } from './limits.ts';
import { resolveConnection, zendeskOptions } from './options.ts';
import { MATCH_KEYS, writeUsers } from './users.ts';

const USERS = 'users';

/**
 * Zendesk Support users: upserted in bulk jobs of up to 100, custom user fields mapped as
 * `user_fields.<key>`, soft-deleted in mirror mode. See docs/destinations/zendesk.md.
 */
export const zendeskDestination = defineDestination({
  type: 'zendesk',
  title: 'Zendesk Support',
  optionsSchema: zendeskOptions,
  secretKeys: ['api_token', 'oauth_token'],
  modes: ['upsert', 'update', 'insert', 'mirror'],
  limits: zendeskLimits,
  objects: [
    {
      name: USERS,
      description: 'End users, agents and admins of Zendesk Support',
      matchKeys: MATCH_KEYS,
      // destroy_many soft-deletes: the user moves to Deleted users until permanently deleted.
      onDelete: 'delete',
    },
  ],
  formats: {
    // Date user fields take YYYY-MM-DD; checkbox fields booleans; multiselect fields and tags arrays.
    date: 'iso',
    timestamp: 'iso',
    boolean: 'boolean',
    array: 'json',
    // Phone numbers normalized to E.164 (+15551234567), one form per number across sources.
    phone: 'e164',
  },
  async connect(options) {
    const client = createZendeskClient(resolveConnection(options), { timeoutMs: options.timeout_ms });
    const checkObject = (object: string) => {
      if (object !== USERS) {
        throw new ConnectorConfigError(`zendesk: unknown object "${object}"; the Zendesk destination writes "users"`);
      }
    };
    const checkNames = fieldNameCheck(client);

    return {
      async check() {
        const me = await client.me();
        if (me.id === null || me.id === undefined) {
          throw new AuthError(
            'Zendesk answered as an anonymous user: check email and api_token (or oauth_token) in the secret',
          );
        }
        if (me.role !== 'admin' && me.role !== 'agent') {
          throw new AuthError(
            `Zendesk authenticated ${client.redact(String(me.email ?? me.id))} as "${me.role}": writing users needs an admin or an agent allowed to manage users`,
          );
        }
      },
      async fields(object) {
        checkObject(object);
        return discoverUserFields(client);
      },
      async write(batch) {
        checkObject(batch.object);
        if (batch.records.length === 0) return [];
        await checkNames(batch.records.flatMap((r) => Object.keys(r.fields)));
        return writeUsers(client, batch, options.job_timeout_ms);
      },
      async close() {},
    };
  },
});
