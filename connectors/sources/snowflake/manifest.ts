import * as z from 'zod';
import { defineSourceManifest } from '#connectors/sdk/source';

const options = z.strictObject({
  /** Account identifier, e.g. `myorg-myaccount` (or the legacy `xy12345.eu-west-1`). */
  account: z.string().min(1),
  /** Login name of the Snowflake user Backflow connects as. */
  username: z.string().min(1),
  warehouse: z.string().min(1).optional(),
  role: z.string().min(1).optional(),
  database: z.string().min(1).optional(),
  schema: z.string().min(1).optional(),
  /** `SNOWFLAKE` (password) or `SNOWFLAKE_JWT` (key pair); default from which secret is present. */
  authenticator: z.enum(['SNOWFLAKE', 'SNOWFLAKE_JWT']).optional(),
  /** Base URL instead of `https://<account>.snowflakecomputing.com`: private link, or a test double. */
  access_url: z.url().optional(),
  /** Milliseconds an HTTP request to Snowflake may take. */
  timeout_ms: z.number().int().positive().default(60_000),
  /** Cancels a statement running longer (`STATEMENT_TIMEOUT_IN_SECONDS`); default the account's. */
  query_timeout_s: z.number().int().positive().optional(),
  /** Login attempts retried after a network error or a 5xx answer. */
  login_retries: z.number().int().min(0).max(10).default(2),
  /** Secret: the user's password. */
  password: z.string().min(1).optional(),
  /** Secret: PEM private key (PKCS#8) of a key pair registered with `ALTER USER … SET RSA_PUBLIC_KEY`. */
  private_key: z.string().min(1).optional(),
  /** Secret: passphrase of an encrypted private key. */
  private_key_passphrase: z.string().min(1).optional(),
});

export type SnowflakeOptions = z.output<typeof options>;

/** Snowflake, with a password or a key pair. docs/sources/snowflake.md */
export const snowflakeSourceManifest = defineSourceManifest({
  type: 'snowflake',
  optionsSchema: options,
  secretKeys: ['password', 'private_key', 'private_key_passphrase'],
});
