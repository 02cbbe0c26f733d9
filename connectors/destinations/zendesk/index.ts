import { defineDestination } from '#connectors/sdk/destination';
import { AuthError, ConnectorConfigError } from '#connectors/sdk/errors';
import { createZendeskClient } from './client.ts';
import { discoverUserFields, fieldNameCheck } from './fields.ts';
import { USERS, zendeskDestinationManifest } from './manifest.ts';
import { resolveConnection } from './options.ts';
import { writeUsers } from './users.ts';

/** Zendesk's runtime: the users API and its bulk jobs behind zendeskDestinationManifest (manifest.ts). */
export const zendeskDestination = defineDestination(zendeskDestinationManifest, {
  async connect(options, context) {
    // Every request — lookups, job polls, field discovery — takes a slot of the lane's pace.
    const client = createZendeskClient(resolveConnection(options), {
      timeoutMs: options.timeout_ms,
      ...(context.pace && { pace: context.pace }),
    });
    const checkObject = (object: string) => {
      if (object !== USERS) {
        throw new ConnectorConfigError(`zendesk: unknown object "${object}"; the Zendesk destination writes "users"`);
      }
    };
    const checkNames = fieldNameCheck(client);

    return {
      /**
       * Who the credentials act as (`GET /api/v2/users/me`). Whether bulk user imports are
       * enabled cannot be read: Zendesk documents no setting or endpoint that tells (Account
       * Settings has none), only the 403 of create_many / create_or_update_many. check() does not
       * probe with a write; the first write that meets the 403 fails with a ConnectorConfigError
       * naming the setting, before any user is written (see docs/destinations/zendesk.md).
       */
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
