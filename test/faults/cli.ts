/**
 * The fault checker from the command line (see docs/testing.md):
 *
 *   npm run check:faults -- --schedules 50 --seed 7
 *   npm run check:faults -- --replay '<schedule JSON from a report>'
 *
 * Exit code 0 when no guarantee broke, 1 when one did (the report says which, and how to replay
 * it), 2 on a usage error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runChecker } from './checker.ts';
import { FEATURES, type Feature, parseFeatures, type Schedule } from './schedule.ts';

const USAGE = `usage: npm run check:faults -- [--schedules N] [--seed S] [--seconds N] [--steps N]
         [--without f1,f2] [--shrink-seconds N] [--replay '<json>'|file] [--path P] [--verbose] [--quiet]
  --schedules N       random schedules to run (default 20)
  --seed S            fast-check seed (default: random, printed)
  --seconds N         start no new schedule after N seconds (default: no limit)
  --steps N           at most N steps per schedule, before the final heal (default 12)
  --without f1,f2     leave features out, to look past a defect already found
  --shrink-seconds N  time allowed for shrinking a failure (default 300)
  --replay JSON|file  run one schedule, as printed by a failure report
  --path P            with --seed: replay fast-check's search from a report
  --verbose           print every step with its duration
  --quiet             print only the report
features: ${Object.entries(FEATURES)
  .map(([name, what]) => `\n  ${name.padEnd(12)} ${what}`)
  .join('')}`;

// The AWS SDK warns about Node 20 on every client; the child processes inherit this too.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function wholeNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usageError(`--${name} expects a whole number, got ${JSON.stringify(text)}`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      schedules: { type: 'string' },
      seed: { type: 'string' },
      seconds: { type: 'string' },
      steps: { type: 'string' },
      without: { type: 'string' },
      'shrink-seconds': { type: 'string' },
      replay: { type: 'string' },
      path: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}
try {
  args = parse();
} catch (error) {
  usageError((error as Error).message);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

let replay: Schedule | undefined;
if (args.replay !== undefined) {
  const text = existsSync(args.replay) ? readFileSync(args.replay, 'utf8') : args.replay;
  try {
    replay = JSON.parse(text) as Schedule;
  } catch (error) {
    usageError(`--replay expects a schedule as JSON, or a file holding one: ${(error as Error).message}`);
  }
}
let without: Set<Feature> = new Set();
try {
  without = parseFeatures(args.without ?? '');
} catch (error) {
  usageError((error as Error).message);
}

const seed = wholeNumber('seed', args.seed) ?? Date.now() % 2 ** 31;
const schedules = wholeNumber('schedules', args.schedules) ?? 20;
if (!args.quiet) {
  console.log(
    replay
      ? 'fault checker: replaying one schedule'
      : `fault checker: ${schedules} schedule(s), seed ${seed}${without.size > 0 ? `, without ${[...without].join(',')}` : ''}`,
  );
}
const report = await runChecker({
  schedules,
  seed,
  without,
  maxSteps: wholeNumber('steps', args.steps) ?? 12,
  searchSeconds: wholeNumber('seconds', args.seconds),
  shrinkSeconds: wholeNumber('shrink-seconds', args['shrink-seconds']) ?? 300,
  path: args.path,
  replay,
  log: args.quiet ? undefined : (line) => console.log(line),
  verbose: args.verbose,
});
console.log(report.text);
process.exit(report.ok ? 0 : 1);
