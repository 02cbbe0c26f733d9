import { afterEach, describe, expect, it, vi } from 'vitest';
import { laneDimensions, METRICS_NAMESPACE, syncDimensions } from '../../infra/constructs/BackflowMonitoring.ts';

interface Emf {
  readonly _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

/** What the functions really emit for one counter: the EMF line Powertools prints. */
async function emitted(name: string, dimensions: Record<string, string>): Promise<Emf> {
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  try {
    const { metrics, powertoolsMetrics } = await import('#functions/shared/aws-environment');
    powertoolsMetrics(metrics).count(name, 1, dimensions);
  } finally {
    write.mockRestore();
    log.mockRestore();
  }
  const line = lines.find((l) => l.includes(`"${name}"`));
  if (!line) throw new Error(`no EMF line for ${name} in ${JSON.stringify(lines)}`);
  return JSON.parse(line) as Emf;
}

describe('metrics contract between the functions and the alarms', () => {
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    ['RunsPlanned', syncDimensions('orders'), { sync: 'orders' }],
    ['ExportErrors', laneDimensions('crm'), { lane: 'crm' }],
  ])(
    '%s is emitted in the namespace and with exactly the dimensions the alarms watch',
    async (name, watched, given) => {
      const emf = await emitted(name, given);
      const [directive] = emf._aws.CloudWatchMetrics;
      expect(directive?.Namespace).toBe(METRICS_NAMESPACE);
      expect(directive?.Dimensions.map((set) => [...set].sort())).toEqual([Object.keys(watched).sort()]);
      for (const [key, value] of Object.entries(watched)) expect(emf[key], key).toBe(value);
    },
  );
});
