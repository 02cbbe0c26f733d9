import * as z from 'zod';

/**
 * `connection:` of the database connectors (PostgreSQL and MySQL, as sources or destinations).
 * The password only ever comes from the secret (`secretKeys: ['connection.password']`).
 */
export function databaseConnection(defaultPort: number) {
  return z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(defaultPort),
    database: z.string().min(1),
    user: z.string().min(1),
    /** Only from the secret (`secretKeys`): never written in backflow.yml. */
    password: z.string().optional(),
    /** `true` verifies the server certificate against the system CAs; `ca` is a PEM bundle. */
    ssl: z
      .union([z.boolean(), z.strictObject({ rejectUnauthorized: z.boolean().optional(), ca: z.string().optional() })])
      .optional(),
  });
}
