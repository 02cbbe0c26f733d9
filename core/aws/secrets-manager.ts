import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { BackflowError, ConnectorConfigError } from '#core/errors';
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
    let out: GetSecretValueCommandOutput;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
    } catch (error) {
      throw secretError(name, error);
    }
    try {
      const value = JSON.parse(out.SecretString ?? '') as unknown;
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // fall through to the error below; the value itself is never shown
    }
    throw new ConnectorConfigError(`secret ${name} in Secrets Manager must hold a JSON object`);
  }
}

/** Names the secret in every error: "can't find the specified secret" alone says not which. */
function secretError(name: string, error: unknown): Error {
  const code = (error as { name?: string }).name ?? '';
  const detail = (error as Error).message;
  if (code === 'ResourceNotFoundException') {
    return new ConnectorConfigError(
      `secret "${name}" does not exist in Secrets Manager (${detail}): create it (docs/deploy.md, "Create the secrets") or fix the \`secret:\` name in backflow.yml`,
      { cause: error },
    );
  }
  if (code === 'AccessDeniedException' || /kms|decrypt/i.test(detail)) {
    return new ConnectorConfigError(
      `secret "${name}" cannot be read by this function (${code}: ${detail}): is it named in backflow.yml (so the stack grants it), and if it is encrypted with a customer managed KMS key, does the key policy allow the account to delegate kms:Decrypt?`,
      { cause: error },
    );
  }
  return new BackflowError(`secret "${name}" could not be read from Secrets Manager: ${code} ${detail}`, {
    cause: error,
  });
}
