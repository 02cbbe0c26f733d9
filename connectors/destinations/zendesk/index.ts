import { defineDestination } from '#connectors/sdk/destination';
import { AuthError, ConnectorConfigError } from '#connectors/sdk/errors';
import { createZendeskClient } from './client.ts';
import { discoverUserFields, fieldNameCheck } from './fields.ts';
import { USERS, zendeskDestinationManifest } from './manifest.ts';
import { resolveConnection } from './options.ts';
import { writeUsers } from './users.ts';

/** Zendesk's runtime: the users API and its bulk jobs behind zendeskDestinationManifest (manifest.ts). */
export const zendeskDestination = defineDestination(zendeskDestinationManifest, {
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
