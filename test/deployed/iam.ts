import { createHash } from 'node:crypto';
import { type PhysicalResource, resolve, type Template } from './template.ts';

/**
 * The identity policies of the template's roles, evaluated the way IAM evaluates them for the
 * calls the functions make: an explicit Deny wins, else an Allow whose action and resource match
 * (`*` and `?` wildcards, actions case-insensitive), else the call is denied. Conditions and
 * managed policies are not emulated: a role using one fails the deployment of the emulation.
 */

interface Statement {
  readonly effect: 'Allow' | 'Deny';
  readonly actions: readonly RegExp[];
  readonly resources: readonly RegExp[];
}

export interface Decision {
  readonly allowed: boolean;
  readonly message: string;
}

/** A role's identity and statements. */
export interface EmulatedRole {
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
  readonly statements: readonly Statement[];
}

const list = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

function pattern(text: string, caseInsensitive: boolean): RegExp {
  const body = text
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'i' : '');
}

/** The access key id each function's credentials carry, so the emulated services know the caller. */
export function accessKeyOf(functionLogicalId: string): string {
  return `ASIA${createHash('sha256').update(functionLogicalId).digest('hex').slice(0, 16).toUpperCase()}`;
}

/** The access key id of a SigV4-signed request (`Credential=AKID/date/region/service/aws4_request`). */
export function callerKey(authorization: string | undefined): string | undefined {
  return /Credential=([^/]+)\//.exec(authorization ?? '')?.[1];
}

export function loadRoles(
  template: Template,
  stackName: string,
  physical: (logicalId: string) => PhysicalResource,
): Map<string, EmulatedRole> {
  const statements = new Map<string, Statement[]>();
  const add = (roleId: string, document: unknown, where: string) => {
    const doc = document as { Statement?: unknown };
    for (const raw of list(doc.Statement) as Record<string, unknown>[]) {
      // KMS is not emulated: a statement of KMS actions only (kms:Decrypt through Secrets Manager,
      // with its conditions) grants nothing any emulated call could use.
      if (list(raw.Action).every((a) => String(a).startsWith('kms:'))) continue;
      for (const unsupported of ['Condition', 'NotAction', 'NotResource', 'Principal']) {
        if (raw[unsupported] !== undefined) {
          throw new Error(`${where}: the harness does not emulate ${unsupported} in an identity policy`);
        }
      }
      const resources = list(raw.Resource).map((r) => {
        try {
          return pattern(String(resolve(r, physical, stackName)), false);
        } catch {
          // A resource the harness does not emulate (a log group's stream, a KMS key): no call here reaches it.
          return /$^/;
        }
      });
      const entry: Statement = {
        effect: raw.Effect === 'Deny' ? 'Deny' : 'Allow',
        actions: list(raw.Action).map((a) => pattern(String(a), true)),
        resources,
      };
      statements.set(roleId, [...(statements.get(roleId) ?? []), entry]);
    }
  };
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    const p = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Role') {
      if (p.ManagedPolicyArns !== undefined) {
        throw new Error(`role ${logicalId}: the harness does not emulate managed policies`);
      }
      for (const inline of list(p.Policies) as { PolicyDocument: unknown }[]) {
        add(logicalId, inline.PolicyDocument, `role ${logicalId}`);
      }
      statements.set(logicalId, statements.get(logicalId) ?? []);
    } else if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') {
      for (const role of list(p.Roles) as { Ref?: string }[]) {
        if (!role.Ref) throw new Error(`policy ${logicalId}: only roles of the template are emulated`);
        add(role.Ref, p.PolicyDocument, `policy ${logicalId}`);
      }
    }
  }
  return new Map(
    [...statements].map(([logicalId, s]) => {
      const { ref, attributes } = physical(logicalId);
      return [logicalId, { logicalId, name: ref, arn: attributes.Arn!, statements: s }];
    }),
  );
}

/** Whether `role`, acting for `session`, may perform `action` on every one of `resources`. */
export function authorize(role: EmulatedRole, session: string, action: string, resources: readonly string[]): Decision {
  for (const resource of resources) {
    const matching = role.statements.filter(
      (s) => s.actions.some((a) => a.test(action)) && s.resources.some((r) => r.test(resource)),
    );
    const user = `arn:aws:sts::${role.arn.split(':')[4]}:assumed-role/${role.name}/${session}`;
    if (matching.some((s) => s.effect === 'Deny')) {
      return {
        allowed: false,
        message: `User: ${user} is not authorized to perform: ${action} on resource: ${resource} with an explicit deny in an identity-based policy`,
      };
    }
    if (!matching.some((s) => s.effect === 'Allow')) {
      return {
        allowed: false,
        message: `User: ${user} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
      };
    }
  }
  return { allowed: true, message: '' };
}
