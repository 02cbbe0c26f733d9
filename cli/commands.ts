import type { CommandContext } from './context.ts';

/** A command's entry point: returns the exit code (0 ok, 1 failure, 2 config or usage error). */
export type CommandRun = (ctx: CommandContext) => Promise<number>;

export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Placeholder in the help, e.g. `N`. */
  readonly arg?: string;
  readonly help: string;
}

export interface CommandSpec {
  readonly name: string;
  /** Positional arguments as shown in the usage line. */
  readonly args: string;
  readonly summary: string;
  /** Paragraphs shown by `--help` under the usage line. */
  readonly description: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly examples: readonly string[];
  /** False for `init`: it runs without a backflow.yml. */
  readonly needsConfig: boolean;
  /** Loaded on demand, so `--help` and light commands start fast. */
  readonly load: () => Promise<CommandRun>;
}

const project: Record<string, OptionSpec> = {
  project: { type: 'string', short: 'p', arg: 'DIR', help: 'Project directory holding backflow.yml (default: .)' },
  config: { type: 'string', short: 'c', arg: 'FILE', help: 'Config file (default: <project>/backflow.yml)' },
};
const common: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'Machine-readable output on stdout (one JSON document)' },
  help: { type: 'boolean', short: 'h', help: 'Show this help' },
};
const remote: Record<string, OptionSpec> = {
  remote: { type: 'boolean', help: 'Act on the deployed stack (AWS) instead of the local runtime' },
  stack: { type: 'string', arg: 'NAME', help: 'CloudFormation stack of --remote (default: Backflow)' },
  region: { type: 'string', arg: 'REGION', help: 'AWS region of --remote (default: AWS_REGION / your profile)' },
  profile: { type: 'string', arg: 'NAME', help: 'AWS profile of --remote (default: AWS_PROFILE)' },
};
const runOptions: Record<string, OptionSpec> = {
  full: { type: 'boolean', help: 'Re-read and re-diff the whole model, ignoring the cursor' },
  force: { type: 'boolean', help: 'Run even when a guardrail or a column type change would stop it' },
};

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'init',
    args: '[dir]',
    summary: 'Create a project: a commented backflow.yml on a runnable DuckDB example',
    description:
      'Writes backflow.yml, data/customers.csv (50 demo customers), .gitignore and README.md into DIR (default: the current directory). It never overwrites: if one of these files exists, nothing is written (exit 2).',
    options: { ...common },
    examples: ['backflow init my-project && cd my-project && backflow run'],
    needsConfig: false,
    load: async () => (await import('./commands/init.ts')).init,
  },
  {
    name: 'validate',
    args: '',
    summary: 'Check backflow.yml: every problem at once, with file:line',
    description:
      'Without --remote the check is offline: shape, names, references, connector options. With --remote it also connects to every source and destination, checks that the models run and have the mapped columns, and that the mapped fields exist in destinations that list their fields (with a "did you mean").',
    options: {
      ...project,
      remote: { type: 'boolean', help: 'Also connect: sources, models, destinations and their fields' },
      ...common,
    },
    examples: ['backflow validate', 'backflow validate --remote -p examples/quickstart'],
    needsConfig: true,
    load: async () => (await import('./commands/validate.ts')).validate,
  },
  {
    name: 'check',
    args: '[name...]',
    summary: 'Test the connections to sources and destinations',
    description:
      'Connects to each named source or destination (all of them by default) and prints one line each: ok, or the error and what to do about it. Exit 1 if any fails.',
    options: { ...project, ...common },
    examples: ['backflow check', 'backflow check crm'],
    needsConfig: true,
    load: async () => (await import('./commands/check.ts')).check,
  },
  {
    name: 'segments',
    args: '[segment]',
    summary: 'Show segments: members now, who enters and leaves on the next run, a sample',
    description:
      "Reads each segment from its source. Entering and leaving are counted against what the first sync reading the segment last delivered (its state), so they are what that sync's next run would add and, in mirror mode, remove. The sample shows the columns the segment's rules read.",
    options: { ...project, ...common },
    examples: ['backflow segments', 'backflow segments high_value --json'],
    needsConfig: true,
    load: async () => (await import('./commands/segments.ts')).segments,
  },
  {
    name: 'fields',
    args: '<destination> [object]',
    summary: "List a destination object's fields: type, required, known/custom, matchable",
    description:
      'Without an object, shows the objects the syncs write to on that destination. The "mapped by" column names the syncs that write each field.',
    options: { ...project, ...common },
    examples: ['backflow fields crm contacts', 'backflow fields crm'],
    needsConfig: true,
    load: async () => (await import('./commands/fields.ts')).fields,
  },
  {
    name: 'preview',
    args: '<sync>',
    summary: 'Show sample records: model row, mapped payload, and what a run would do with each',
    description:
      'Reads a few rows of the model (the first ones in primary key order, or the ones named by --key), maps them, and compares them with the state: create, update, unchanged, or invalid and why. Nothing is written, unless --send: then exactly these records go through the real export path (a small run of their own), so you can check them in the destination before the first full run. --key reads only the named keys (a WHERE on the primary key).',
    options: {
      ...project,
      key: { type: 'string', multiple: true, arg: 'K', help: 'Preview this primary key (repeatable)' },
      limit: { type: 'string', arg: 'N', help: 'Rows to preview without --key (default: 5)' },
      send: { type: 'boolean', help: 'Send the previewed records to the destination (local runtime)' },
      ...common,
    },
    examples: [
      'backflow preview customers-to-crm --limit 3',
      'backflow preview customers-to-crm --key 42 --key 43',
      'backflow preview customers-to-crm --key 42 --send',
    ],
    needsConfig: true,
    load: async () => (await import('./commands/preview.ts')).preview,
  },
  {
    name: 'plan',
    args: '<sync>',
    summary: 'Dry run: what a run would create, update, delete, and how long the destination needs',
    description:
      "Reads the model and diffs it against the state exactly as a run would, without writing anything: no state, no queue, no destination call. Prints the counts of creates, updates, deletes, unchanged and invalid records, the guardrail and schema verdict, the requests (messages = destination calls) and the time the destination's limits imply. When a run would stop (guardrail, schema drift), the counts are those of a forced run, and the exit code is 1.",
    options: { ...project, full: runOptions.full!, ...common },
    examples: ['backflow plan customers-to-crm', 'backflow plan customers-to-crm --full --json'],
    needsConfig: true,
    load: async () => (await import('./commands/plan.ts')).plan,
  },
  {
    name: 'run',
    args: '[sync...]',
    summary: 'Run syncs now on the local runtime (all enabled syncs by default)',
    description:
      'Plans and exports each sync through the real handlers, exporters delivering while the plan reads, on the embedded store in .backflow/state/ (state and lanes). Exit 1 if a sync failed or stopped.',
    options: { ...project, ...runOptions, ...common },
    examples: ['backflow run', 'backflow run customers-to-crm --full'],
    needsConfig: true,
    load: async () => (await import('./commands/run.ts')).run,
  },
  {
    name: 'trigger',
    args: '<sync>',
    summary: 'Start a run of one sync: locally (like run), or on AWS with --remote',
    description:
      'Locally it runs the sync to the end, like `backflow run <sync>`. With --remote it invokes the deployed plan function asynchronously and returns at once; follow the run with `backflow status <sync> --remote`.',
    options: { ...project, ...runOptions, ...remote, ...common },
    examples: ['backflow trigger customers-to-crm', 'backflow trigger customers-to-crm --remote --full'],
    needsConfig: true,
    load: async () => (await import('./commands/trigger.ts')).trigger,
  },
  {
    name: 'status',
    args: '[sync]',
    summary: 'Recent runs with their counters, lane and dead-letter depths, last error',
    description:
      'Locally, from the embedded store in .backflow/state/ (lanes are empty between runs unless one was cut short; dead letters stay until redriven). With --remote, from the deployed state table and SQS queues.',
    options: {
      ...project,
      limit: { type: 'string', arg: 'N', help: 'Runs per sync (default: 5)' },
      ...remote,
      ...common,
    },
    examples: ['backflow status', 'backflow status customers-to-crm --remote --limit 10'],
    needsConfig: true,
    load: async () => (await import('./commands/status.ts')).status,
  },
  {
    name: 'rejections',
    args: '<sync>',
    summary: 'Records the destination refused, with the reason, newest first',
    description:
      'Lists the records whose state is "rejected": the destination refused them for a reason retrying cannot fix. Fix the data or the mapping, and the next run that changes them sends them again (or run with --full). Reads every record state of the sync.',
    options: {
      ...project,
      limit: { type: 'string', arg: 'N', help: 'Records to show (default: 50)' },
      ...remote,
      ...common,
    },
    examples: ['backflow rejections customers-to-crm', 'backflow rejections customers-to-crm --remote --json'],
    needsConfig: true,
    load: async () => (await import('./commands/rejections.ts')).rejections,
  },
  {
    name: 'redrive',
    args: '<destination>',
    summary: "Move dead-lettered messages back to the destination's lane",
    description:
      "Locally it moves the messages of the lane's dead-letter queue (in .backflow/state/) back to the lane, delivers them with the local runtime and reports what happened (exit 1 if some are dead-lettered again). With --remote it starts an SQS message move task from the lane's DLQ back to the lane; the deployed export function delivers them.",
    options: { ...project, ...remote, ...common },
    examples: ['backflow redrive crm', 'backflow redrive crm --remote'],
    needsConfig: true,
    load: async () => (await import('./commands/redrive.ts')).redrive,
  },
  {
    name: 'ui',
    args: '',
    summary: 'Serve a local web app for the project (models, syncs, runs) on 127.0.0.1',
    description:
      'Prints an address with a one-time token: only who has it can read the data. Models, destinations and their fields, a sync editor that writes backflow.yml (keeping its comments, showing the diff, validating first), preview and plan, segments, runs with their rejections and dead letters, and runs started from the page with live progress. With --remote it reads the runs, rejections and dead letters of the deployed stack, read-only unless --allow-actions. The front end is built on first use (cached in node_modules/.cache/backflow-ui/).',
    options: {
      ...project,
      port: { type: 'string', arg: 'N', help: 'Port on 127.0.0.1 (default: a free one)' },
      ...remote,
      'allow-actions': { type: 'boolean', help: 'With --remote: allow redrive and trigger on the stack' },
      ...common,
    },
    examples: ['backflow ui', 'backflow ui --port 4321', 'backflow ui --remote --stack Backflow'],
    needsConfig: true,
    load: async () => (await import('./commands/ui.ts')).ui,
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Every option any command takes, for the first pass that finds the command name. */
export function allOptions(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = {};
  for (const command of COMMANDS) Object.assign(all, command.options);
  return all;
}

export const EXIT_CODES =
  'Exit codes: 0 ok, 1 a sync, a check or a remote call failed (or a run would stop), 2 config or usage error.';

export function commandHelp(spec: CommandSpec): string {
  const options = Object.entries(spec.options).map(([name, o]) => {
    const flags = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
    return [flags, o.help] as const;
  });
  const width = Math.max(...options.map(([f]) => f.length));
  return [
    `Usage: backflow ${spec.name}${spec.args ? ` ${spec.args}` : ''} [options]`,
    '',
    spec.summary,
    '',
    wrap(spec.description, 96),
    '',
    'Options:',
    ...options.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`),
    '',
    'Examples:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    EXIT_CODES,
  ].join('\n');
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args}`.length));
  return [
    'Usage: backflow <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${`${c.name} ${c.args}`.padEnd(width)}  ${c.summary}`),
    '',
    'Common options:',
    '  -p, --project DIR  Project directory holding backflow.yml (default: .)',
    '  -c, --config FILE  Config file (default: <project>/backflow.yml)',
    '      --json         Machine-readable output',
    '  -h, --help         Help; `backflow <command> --help` for a command',
    '',
    'From an empty folder to a reviewed sync:',
    '  backflow init my-project && cd my-project',
    '  backflow validate --remote          # config, connections, fields',
    '  backflow preview customers-to-crm   # sample records and what would happen to them',
    '  backflow plan customers-to-crm      # dry run: counts, guardrails, requests, time',
    '  backflow run                        # sync for real',
    '  backflow status                     # runs, lanes, dead letters',
    '',
    EXIT_CODES,
  ].join('\n');
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
