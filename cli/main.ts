import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '#core/config/load';
import { BackflowError, ConfigFileError } from '#core/errors';
import { LocalRuntime, type ProgressEvent } from './local-runtime.ts';
import { dim, formatSummary, red } from './output.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `Usage: backflow <command> [options]

Commands:
  run [sync...]      Run syncs now on the local runtime (all enabled syncs by default)
  validate           Check backflow.yml and report every problem with file:line

Options:
  -p, --project DIR  Project directory holding backflow.yml (default: .)
  -c, --config FILE  Config file (default: <project>/backflow.yml)
      --full         Re-read and re-diff the whole model, ignoring the cursor
      --force        Run even when a guardrail would stop it
      --json         Machine-readable output
  -h, --help         Show this help

Examples:
  backflow run                      # every sync in ./backflow.yml
  backflow run customers-to-crm --full
  backflow validate -c examples/quickstart/backflow.yml

Exit codes: 0 ok, 1 a sync failed or stopped, 2 config or usage error.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      project: { type: 'string', short: 'p' },
      config: { type: 'string', short: 'c' },
      full: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  const configFile = values.config ?? path.join(values.project ?? '.', 'backflow.yml');
  if (!existsSync(configFile)) {
    console.error(`backflow: no config at ${configFile} (use --project DIR or --config FILE)`);
    return 2;
  }
  const config = loadConfig(configFile);
  switch (command) {
    case 'validate':
      console.log(
        values.json
          ? JSON.stringify({ ok: true, syncs: Object.keys(config.syncs) })
          : `${configFile}: ok (${Object.keys(config.syncs).length} sync(s))`,
      );
      return 0;
    case 'run':
      return run(config, rest, { full: values.full, force: values.force, json: values.json });
    default:
      console.error(`backflow: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function run(
  config: Config,
  names: string[],
  options: { full: boolean; force: boolean; json: boolean },
): Promise<number> {
  const unknown = names.filter((name) => !(name in config.syncs));
  if (unknown.length > 0) {
    console.error(`backflow: no sync named ${unknown.join(', ')}; syncs are ${Object.keys(config.syncs).join(', ')}`);
    return 2;
  }
  const syncIds =
    names.length > 0
      ? names
      : Object.values(config.syncs)
          .filter((s) => s.enabled)
          .map((s) => s.id);
  const runtime = await LocalRuntime.start({ config, onProgress: options.json ? undefined : progress() });
  try {
    const summaries = await runtime.run(syncIds, options);
    if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
    if (options.json) console.log(JSON.stringify(summaries, null, 2));
    else for (const summary of summaries) console.log(formatSummary(summary));
    return summaries.every((s) => s.status === 'succeeded') ? 0 : 1;
  } finally {
    await runtime.stop();
  }
}

/** Progress on stderr: one rewritten line on a terminal, a line per plan otherwise. */
function progress(): (event: ProgressEvent) => void {
  let exported = 0;
  return (event) => {
    if (event.type === 'plan') {
      const c = event.result.counters;
      const line = `${event.result.syncId}: ${event.result.status}${c ? ` — ${c.extracted} read, ${c.queued + c.deletesQueued} queued` : ''}`;
      process.stderr.write(process.stderr.isTTY ? `\r\u001b[K${line}` : `${dim(line)}\n`);
    } else if (process.stderr.isTTY) {
      exported += event.messages - event.failed;
      process.stderr.write(
        `\r\u001b[Kexporting ${event.lane}: ${exported} message(s) delivered, ${event.pending} pending`,
      );
    }
  };
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof ConfigFileError) {
    console.error(red(error.message));
    process.exitCode = 2;
  } else if (error instanceof BackflowError) {
    console.error(red(`backflow: ${error.message}`));
    process.exitCode = 1;
  } else if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`backflow: ${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    console.error(error);
    process.exitCode = 1;
  }
}
