/**
 * npm run check:faults -- [--schedules N] [--seed S] [--steps N] [--without f1,f2] [--shrink-seconds N]
 *                         [--replay '<json>' | --replay file.json] [--path P] [--quiet]
 *
 * Exit code 0 when no guarantee broke, 1 when one did (the report says which, and how to replay
 * it), 2 on a usage error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runChecker } from './checker.ts';
import { FEATURES, parseFeatures, type Schedule } from './schedule.ts';

const usage = `usage: npm run check:faults -- [--schedules N] [--seed S] [--steps N] [--without f1,f2]
                              [--shrink-seconds N] [--replay '<json>'|file] [--path P] [--quiet]
features (for --without): ${Object.keys(FEATURES).join(', ')}`;

let values: ReturnType<typeof parse>['values'];
function parse() {
  return parseArgs({
    options: {
      schedules: { type: 'string', default: '20' },
      seed: { type: 'string' },
      steps: { type: 'string', default: '12' },
      without: { type: 'string', default: '' },
      'shrink-seconds': { type: 'string', default: '300' },
      replay: { type: 'string' },
      path: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
}
try {
  values = parse().values;
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  for (const [name, what] of Object.entries(FEATURES)) console.log(`  ${name.padEnd(12)} ${what}`);
  process.exit(0);
}
const int = (name: string, text: string | undefined): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} expects a whole number, got ${JSON.stringify(text)}\n${usage}`);
    process.exit(2);
  }
  return n;
};

let replay: Schedule | undefined;
if (values.replay) {
  const text = existsSync(values.replay) ? readFileSync(values.replay, 'utf8') : values.replay;
  try {
    replay = JSON.parse(text) as Schedule;
  } catch (error) {
    console.error(`--replay expects a schedule as JSON or a file holding one: ${(error as Error).message}`);
    process.exit(2);
  }
}
let without: ReturnType<typeof parseFeatures>;
try {
  without = parseFeatures(values.without);
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  process.exit(2);
}

const seed = values.seed === undefined ? Date.now() % 2 ** 31 : int('seed', values.seed);
const quiet = values.quiet;
console.log(
  replay
    ? 'fault checker: replaying one schedule'
    : `fault checker: ${values.schedules} schedule(s), seed ${seed}${without.size > 0 ? `, without ${[...without].join(',')}` : ''}`,
);
const report = await runChecker({
  schedules: int('schedules', values.schedules),
  seed,
  without,
  maxSteps: int('steps', values.steps),
  shrinkSeconds: int('shrink-seconds', values['shrink-seconds']),
  path: values.path,
  replay,
  log: quiet ? undefined : (line) => console.log(line),
  verbose: values.verbose,
});
console.log(report.text);
process.exit(report.ok ? 0 : 1);
