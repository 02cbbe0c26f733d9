import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deepMerge } from '#core/connect';
import { LocalSecrets, secretEnvName } from '#core/secrets';

describe('local secrets', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-secrets-'));
  const file = path.join(dir, 'secrets.json');
  writeFileSync(file, JSON.stringify({ 'crm-postgres': { connection: { password: 'from-file' } } }));

  it('reads BACKFLOW_SECRET_<NAME> first, then .backflow/secrets.json', async () => {
    expect(secretEnvName('crm-postgres')).toBe('BACKFLOW_SECRET_CRM_POSTGRES');
    const env = { BACKFLOW_SECRET_CRM_POSTGRES: '{"connection":{"password":"from-env"}}' };
    expect(await new LocalSecrets(file, env).get('crm-postgres')).toEqual({ connection: { password: 'from-env' } });
    expect(await new LocalSecrets(file, {}).get('crm-postgres')).toEqual({ connection: { password: 'from-file' } });
  });

  it('says where to put a missing secret, and never shows a malformed one', async () => {
    await expect(new LocalSecrets(file, {}).get('hubspot')).rejects.toThrow(
      /set BACKFLOW_SECRET_HUBSPOT to its JSON, or add "hubspot" to/,
    );
    const bad = new LocalSecrets(file, { BACKFLOW_SECRET_X: 'hunter2 not json' }).get('x');
    await expect(bad).rejects.toThrow(/not valid JSON/);
    await expect(bad).rejects.not.toThrow(/hunter2/);
  });

  it('deep-merges a secret into the options', () => {
    expect(deepMerge({ connection: { host: 'h', user: 'u' }, schema: 's' }, { connection: { password: 'p' } })).toEqual(
      {
        connection: { host: 'h', user: 'u', password: 'p' },
        schema: 's',
      },
    );
  });
});
