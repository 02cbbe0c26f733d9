import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConnectorConfigError } from '#core/errors';
import type { Secrets } from '#core/ports';

/** Secrets Manager, cached for a few minutes so a busy lane does not call it per batch. */
export class SecretsManagerSecrets implements Secrets {
  private readonly cache = new Map<string, { value: Promise<Record<string, unknown>>; until: number }>();

  constructor(
    private readonly client = new SecretsManagerClient({}),
    private readonly ttlMs = 5 * 60 * 1000,
  ) {}

  get(name: string): Promise<Record<string, unknown>> {
    const hit = this.cache.get(name);
    if (hit && hit.until > Date.now()) return hit.value;
    const value = this.fetch(name);
    this.cache.set(name, { value, until: Date.now() + this.ttlMs });
    value.catch(() => this.cache.delete(name));
    return value;
  }

  private async fetch(name: string): Promise<Record<string, unknown>> {
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
    try {
      const value = JSON.parse(out.SecretString ?? '') as unknown;
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // fall through to the error below; the value itself is never shown
    }
    throw new ConnectorConfigError(`secret ${name} in Secrets Manager must hold a JSON object`);
  }
}
