import { createHash, createPublicKey, verify } from 'node:crypto';

/**
 * Checks a key-pair login JWT the way Snowflake does: RS256 signature by the user's registered
 * public key, `iss` = `ACCOUNT.USER.SHA256:<base64 sha256 of the public key's DER>`,
 * `sub` = `ACCOUNT.USER`, and not expired. Returns a reason when the token is refused.
 */
export function checkLoginJwt(token: string, account: string, user: string, publicKeyPem: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a JWT';
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: { alg?: string };
  let payload: { iss?: string; sub?: string; exp?: number };
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return 'malformed JWT';
  }
  if (header.alg !== 'RS256') return `unexpected algorithm ${header.alg}`;
  const publicKey = createPublicKey(publicKeyPem);
  const signed = verify(
    'sha256',
    Buffer.from(`${headerPart}.${payloadPart}`),
    publicKey,
    Buffer.from(signaturePart, 'base64url'),
  );
  if (!signed) return 'bad signature';
  const subject = `${account.toUpperCase()}.${user.toUpperCase()}`;
  const fingerprint = createHash('sha256')
    .update(publicKey.export({ format: 'der', type: 'spki' }))
    .digest('base64');
  if (payload.sub !== subject) return `subject ${payload.sub} is not ${subject}`;
  if (payload.iss !== `${subject}.SHA256:${fingerprint}`) return `issuer ${payload.iss} does not match the key`;
  // The Node driver writes `exp` in milliseconds; the JWT standard says seconds. Accept both.
  const exp = payload.exp ?? 0;
  const expiresAt = exp > 1e12 ? exp : exp * 1000;
  if (expiresAt < Date.now()) return 'expired';
  return undefined;
}
