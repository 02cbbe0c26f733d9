import { existsSync, readFileSync } from 'node:fs';
import { ConnectorConfigError } from './errors.ts';
import type { Secrets } from './ports.ts';

/** Environment variable holding a secret's JSON locally: `crm-postgres` → `BACKFLOW_SECRET_CRM_POSTGRES`. */
export function secretEnvName(name: string): string {
  return `BACKFLOW_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function parseSecret(name: string, text: string, origin: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConnectorConfigError(`secret ${name} from ${origin} is not valid JSON (its value is not shown)`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConnectorConfigError(`secret ${name} from ${origin} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Local secrets: `BACKFLOW_SECRET_<NAME>` (JSON) first, then the git-ignored
 * `.backflow/secrets.json` (`{ "<name>": { ... } }`).
 */
export class LocalSecrets implements Secrets {
  constructor(
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async get(name: string): Promise<Record<string, unknown>> {
    const variable = secretEnvName(name);
    const fromEnv = this.env[variable];
    if (fromEnv !== undefined) return parseSecret(name, fromEnv, `$${variable}`);
    if (existsSync(this.file)) {
      const all = parseSecret('file', readFileSync(this.file, 'utf8'), this.file);
      const entry = all[name];
      if (entry !== undefined) return parseSecret(name, JSON.stringify(entry), this.file);
    }
    throw new ConnectorConfigError(
      `secret ${name} not found: set ${variable} to its JSON, or add "${name}" to ${this.file}`,
    );
  }
}
