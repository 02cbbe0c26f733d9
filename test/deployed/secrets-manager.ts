import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callerKey } from './iam.ts';
import { ACCOUNT, REGION } from './template.ts';

/**
 * Secrets Manager's GetSecretValue on 127.0.0.1, as the AWS SDK calls it (JSON 1.1 protocol,
 * `X-Amz-Target: secretsmanager.GetSecretValue`), with AWS's documented answers: the secret, or
 * HTTP 400 `ResourceNotFoundException` ("Secrets Manager can't find the specified secret.") for
 * a name it does not hold; AccessDeniedException when the caller's policies do not allow it. No emulator of Secrets Manager exists on npm; the functions read
 * nothing else from it.
 */
export interface SecretsManagerStub {
  readonly url: string;
  /** Secret name → its value (the SecretString is this object's JSON). */
  readonly secrets: Map<string, unknown>;
  /** Names asked for, in order. */
  readonly requests: string[];
  stop(): Promise<void>;
}

/**
 * `authorize` answers, for a caller's access key and a secret's ARN, why the caller may not read
 * it (AccessDeniedException), or undefined. A secret that does not exist is not found, whoever asks.
 */
export async function startSecretsManager(
  initial: Record<string, unknown>,
  authorize: (caller: string | undefined, arn: string) => string | undefined = () => undefined,
): Promise<SecretsManagerStub> {
  const secrets = new Map(Object.entries(initial));
  const requests: string[] = [];
  const versions = new Map<string, string>();
  const answer = (res: ServerResponse, status: number, body: unknown, errorType?: string) => {
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': randomUUID(),
      ...(errorType && { 'x-amzn-errortype': errorType }),
    });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, raw: string, res: ServerResponse) => {
    const target = req.headers['x-amz-target'];
    if (req.method !== 'POST' || target !== 'secretsmanager.GetSecretValue') {
      answer(res, 400, { __type: 'UnknownOperationException', message: `not emulated: ${String(target)}` });
      return;
    }
    const { SecretId } = JSON.parse(raw) as { SecretId?: string };
    const name = SecretId?.startsWith('arn:') ? SecretId.split(':')[6]!.replace(/-[A-Za-z0-9]{6}$/, '') : SecretId;
    requests.push(name ?? '');
    if (name === undefined || !secrets.has(name)) {
      answer(
        res,
        400,
        { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." },
        'ResourceNotFoundException',
      );
      return;
    }
    const arn = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
    const denied = authorize(callerKey(req.headers.authorization), arn);
    if (denied !== undefined) {
      answer(res, 400, { __type: 'AccessDeniedException', message: denied }, 'AccessDeniedException');
      return;
    }
    const version = versions.get(name) ?? randomUUID();
    versions.set(name, version);
    answer(res, 200, {
      ARN: arn,
      Name: name,
      VersionId: version,
      SecretString: JSON.stringify(secrets.get(name)),
      VersionStages: ['AWSCURRENT'],
      CreatedDate: Math.floor(Date.now() / 1000),
    });
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    secrets,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
