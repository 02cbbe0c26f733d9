/**
 * The CloudFormation template `cdk synth` wrote, read the way CloudFormation would deploy the
 * parts the harness emulates: resources by logical id, and the intrinsic functions of their
 * properties resolved to the emulators' physical names.
 */

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface Template {
  readonly Resources: Record<string, TemplateResource>;
}

/** What a deployed resource answers to `Ref` and `Fn::GetAtt`. */
export interface PhysicalResource {
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';

/** The resources of one type, by logical id. */
export function resourcesOf(template: Template, type: string): [string, TemplateResource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/**
 * Resolves `Ref`, `Fn::GetAtt`, `Fn::Join` and `Fn::Sub` (and the pseudo parameters) against the
 * deployed resources. Anything else throws: a template the harness cannot read must not be run
 * with a guess in its environment.
 */
export function resolve(value: unknown, physical: (logicalId: string) => PhysicalResource, stackName: string): unknown {
  const pseudo: Record<string, string> = {
    'AWS::Region': REGION,
    'AWS::AccountId': ACCOUNT,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': stackName,
  };
  const ref = (name: string): string => pseudo[name] ?? physical(name).ref;
  const attribute = (logicalId: string, name: string): string => {
    const found = physical(logicalId).attributes[name];
    if (found === undefined) throw new Error(`the harness does not emulate Fn::GetAtt ${logicalId}.${name}`);
    return found;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      if (key === 'Ref') return ref(arg as string);
      if (key === 'Fn::GetAtt') {
        const [logicalId, name] = typeof arg === 'string' ? arg.split('.') : (arg as [string, string]);
        return attribute(logicalId!, name!);
      }
      if (key === 'Fn::Join') {
        const [separator, parts] = arg as [string, unknown[]];
        return parts.map((p) => String(walk(p))).join(separator);
      }
      if (key === 'Fn::Sub') {
        const [text, variables] = typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
        return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
          if (name in variables) return String(walk(variables[name]));
          const [logicalId, attr] = name.split('.');
          return attr === undefined ? ref(logicalId!) : attribute(logicalId!, attr);
        });
      }
      if (key.startsWith('Fn::') || key === 'Condition') {
        throw new Error(`the harness does not resolve ${key} (in ${JSON.stringify(v).slice(0, 200)})`);
      }
    }
    return Object.fromEntries(entries.map(([k, x]) => [k, walk(x)]));
  };
  return walk(value);
}

/**
 * Fails on a property the harness does not emulate, so a template that starts to rely on one
 * (a FIFO queue, a VPC, an event filter…) is noticed instead of silently run differently.
 */
export function assertKnownProperties(
  logicalId: string,
  resource: TemplateResource,
  emulated: readonly string[],
  notEmulated: readonly string[],
): void {
  const known = new Set([...emulated, ...notEmulated]);
  const unknown = Object.keys(resource.Properties ?? {}).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new Error(
      `${resource.Type} ${logicalId}: the harness does not emulate ${unknown.join(', ')}; extend test/deployed/ before trusting its results`,
    );
  }
}
