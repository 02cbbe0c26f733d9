import { Session } from 'node:inspector/promises';
import { round } from './measure.ts';

/** Where a CPU profile's samples fell, by component. */
export interface CpuShares {
  /** Sampled milliseconds, idle excluded. */
  readonly busyMs: number;
  /** Share of the busy samples per component, largest first. */
  readonly components: readonly { name: string; share: number }[];
  /** The functions with the most self time (name, file:line), largest first. */
  readonly functions: readonly { name: string; share: number }[];
}

const COMPONENTS: readonly [string, RegExp][] = [
  [
    'dynalite (local DynamoDB)',
    /\/node_modules\/(dynalite|level|classic-level|memory-level|abstract-level|level-[\w-]+|lazy|big\.js|async|buffer-crc32|lock|once|functional-red-black-tree|module-error|maybe-combine-errors)\//,
  ],
  [
    'fauxqs (local SQS)',
    /\/node_modules\/(fauxqs|fastify|@fastify|avvio|find-my-way|light-my-request|pino[\w-]*|toad-cache|valibot|fast-json-stringify|fast-querystring|fast-uri|ajv[\w-]*|secure-json-parse|rfdc|process-warning|abstract-logging|json-schema-ref-resolver|real-require|thread-stream|on-exit-leak-free|sonic-boom|atomic-sleep|safe-stable-stringify|fast-redact|quick-format-unescaped|ret|safe-regex2|cookie|set-cookie-parser|proxy-addr|forwarded|ipaddr\.js|semver|fast-decode-uri-component|fast-deep-equal|json-schema-traverse|require-from-string|fastq|reusify)\//,
  ],
  ['AWS SDK (clients)', /\/node_modules\/(@aws-sdk|@smithy|@aws-crypto|fast-xml-parser|strnum|bowser|tslib|uuid)\//],
  ['Powertools + middy', /\/node_modules\/(@aws-lambda-powertools|@middy)\//],
  ['DuckDB', /\/node_modules\/@duckdb\//],
  ['other packages', /\/node_modules\//],
];

/** Files of this repository, outside node_modules. */
const PROJECT: readonly [string, RegExp][] = [
  ['test fakes (webhook receiver, in-memory state)', /\/test\/fakes\//],
  ['Backflow (engine, handlers, connectors, runtime)', /\/(core|functions|connectors|cli)\//],
  ['bench (measuring)', /\/bench\//],
];

function componentOf(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'native / unattributed';
  if (url === '' || url.startsWith('node:')) return 'Node.js runtime (HTTP, streams, crypto, JSON…)';
  const table = url.includes('/node_modules/') ? COMPONENTS : PROJECT;
  for (const [name, pattern] of table) if (pattern.test(url)) return name;
  return 'other code';
}

/** A sampling CPU profile of this process, summarised by component (self time). */
export class CpuProfile {
  private readonly session = new Session();
  private started: Promise<void> | undefined;

  /** Starts sampling (once: a second call while sampling does nothing). */
  start(): void {
    if (this.started) return;
    this.session.connect();
    this.started = (async () => {
      await this.session.post('Profiler.enable');
      await this.session.post('Profiler.setSamplingInterval', { interval: 1000 });
      await this.session.post('Profiler.start');
    })();
  }

  async stop(): Promise<CpuShares | undefined> {
    if (!this.started) return undefined;
    const started = this.started;
    this.started = undefined;
    await started;
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    const byComponent = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let busy = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      const frame = node.callFrame;
      if (hits === 0 || frame.functionName === '(idle)') continue;
      const name = componentOf(frame.url, frame.functionName);
      byComponent.set(name, (byComponent.get(name) ?? 0) + hits);
      // Files tsx compiled report no useful line: their name is enough.
      const where =
        frame.url === ''
          ? 'native'
          : frame.url.includes('/node_modules/')
            ? `${shortPath(frame.url)}:${frame.lineNumber + 1}`
            : shortPath(frame.url);
      const fn = `${frame.functionName || '(anonymous)'} (${where})`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
      busy += hits;
    }
    const sampleMs =
      profile.samples && profile.samples.length > 0
        ? (profile.endTime - profile.startTime) / 1000 / profile.samples.length
        : 1;
    return {
      busyMs: round(busy * sampleMs),
      components: shares(byComponent, busy),
      functions: shares(byFunction, busy).slice(0, 12),
    };
  }
}

function shares(hits: ReadonlyMap<string, number>, total: number): { name: string; share: number }[] {
  return [...hits]
    .map(([name, n]) => ({ name, share: round(n / Math.max(1, total), 3) }))
    .sort((a, b) => b.share - a.share);
}

/** `node_modules/<package>/…/file.js` or the path inside this repository. */
function shortPath(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length).replace(/\/(dist|lib)\/.*\//, '/…/');
  const root = path.search(/\/(core|functions|connectors|cli|test|bench|examples)\//);
  return root >= 0 ? path.slice(root + 1) : path;
}
