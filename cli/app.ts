import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '#core/config/load';
import { suggest } from '#core/config/suggest';
import { BackflowError, ConfigFileError, errorMessage } from '#core/errors';
import {
  allOptions,
  COMMANDS,
  type CommandSpec,
  commandHelp,
  findCommand,
  mainHelp,
  type OptionSpec,
} from './commands.ts';
import { type CommandContext, DEFAULT_STACK, type OptionValue, UsageError } from './context.ts';
import { hintFor } from './hints.ts';
import { colorEnabled, createStyle, type Io, processIo } from './io.ts';
import { Progress } from './progress.ts';
import type { RemoteClients, RemoteOptions } from './remote.ts';

export interface CliOptions {
  readonly io?: Io;
  /** AWS clients for `--remote` (tests inject mocks); default: the SDK's credential chain. */
  readonly remoteClients?: (options: RemoteOptions) => RemoteClients | Promise<RemoteClients>;
}

/**
 * The whole CLI as a function: parses `argv`, runs the command, returns the exit code
 * (0 ok, 1 failure, 2 config or usage error). `cli/main.ts` is only the process around it.
 */
export async function runCli(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  const io = options.io ?? processIo();
  const errStyle = createStyle(colorEnabled(io.stderrIsTTY, io.env));
  let spec: CommandSpec | undefined;
  try {
    const name = commandName(argv);
    if (name === undefined || name === 'help') {
      const topic = name === 'help' ? argv.filter((a) => !a.startsWith('-'))[1] : undefined;
      const target = topic === undefined ? undefined : findCommand(topic);
      if (topic !== undefined && !target) throw new UsageError(unknownCommand(topic));
      io.out(target ? commandHelp(target) : mainHelp());
      return name === undefined && !argv.some((a) => a === '-h' || a === '--help') ? 2 : 0;
    }
    spec = findCommand(name);
    if (!spec) throw new UsageError(unknownCommand(name));
    const parsed = parseCommand(spec, argv, name);
    if (parsed.values.help === true) {
      io.out(commandHelp(spec));
      return 0;
    }
    const ctx = context(spec, parsed, io, options);
    const run = await spec.load();
    return await run(ctx);
  } catch (error) {
    return report(error, io, errStyle, spec);
  }
}

function unknownCommand(name: string): string {
  const hint = suggest(
    name,
    COMMANDS.map((c) => c.name),
  );
  return `unknown command "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; run \`backflow --help\` for the list`;
}

/** The command is the first positional argument, wherever the options are. */
function commandName(argv: readonly string[]): string | undefined {
  const { positionals } = parseArgs({
    args: [...argv],
    options: toParseArgs(allOptions()),
    allowPositionals: true,
    strict: false,
  });
  return positionals[0];
}

function toParseArgs(options: Readonly<Record<string, OptionSpec>>) {
  return Object.fromEntries(
    Object.entries(options).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  ) as Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }>;
}

interface Parsed {
  readonly values: Record<string, OptionValue>;
  readonly positionals: string[];
}

function parseCommand(spec: CommandSpec, argv: readonly string[], name: string): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: toParseArgs(spec.options),
      allowPositionals: true,
      strict: true,
    });
    const index = positionals.indexOf(name);
    positionals.splice(index, 1);
    return { values: values as Record<string, OptionValue>, positionals };
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(errorMessage(error).split('. To specify')[0]!, commandHelp(spec));
    }
    throw error;
  }
}

function context(spec: CommandSpec, parsed: Parsed, io: Io, options: CliOptions): CommandContext {
  const { values } = parsed;
  const str = (key: string) => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  const configFile = path.resolve(io.cwd, str('config') ?? path.join(str('project') ?? '.', 'backflow.yml'));
  let config: Config | undefined;
  const remoteOptions: RemoteOptions = {
    stack: str('stack') ?? DEFAULT_STACK,
    region: str('region'),
    profile: str('profile'),
  };
  let clients: Promise<RemoteClients> | undefined;
  return {
    name: spec.name,
    io,
    style: createStyle(colorEnabled(io.stdoutIsTTY, io.env)),
    errStyle: createStyle(colorEnabled(io.stderrIsTTY, io.env)),
    positionals: parsed.positionals,
    options: values,
    json: values.json === true,
    configFile,
    async config() {
      if (config) return config;
      if (!existsSync(configFile)) {
        throw new UsageError(
          `no config at ${path.relative(io.cwd, configFile) || configFile} (use --project DIR or --config FILE, or create one with \`backflow init\`)`,
        );
      }
      // Loaded lazily: the config's modules (zod schemas, connector manifests) are the heavy part of startup.
      const [{ loadConfig }, { catalogue }] = await Promise.all([
        import('#core/config/load'),
        import('#connectors/registry'),
      ]);
      config = loadConfig(configFile, catalogue);
      return config;
    },
    remote() {
      clients ??= (async () => {
        if (options.remoteClients) return options.remoteClients(remoteOptions);
        const { awsClients } = await import('./remote.ts');
        return awsClients(remoteOptions);
      })();
      return clients;
    },
    remoteOptions,
    progress: new Progress(io),
    usage: commandHelp(spec),
  };
}

function report(error: unknown, io: Io, style: ReturnType<typeof createStyle>, spec: CommandSpec | undefined): number {
  if (error instanceof UsageError) {
    io.err(style.red(`backflow${spec ? ` ${spec.name}` : ''}: ${error.message}`));
    if (error.usage) io.err(`\n${error.usage}`);
    else if (spec) io.err(style.dim(`see \`backflow ${spec.name} --help\``));
    return 2;
  }
  if (error instanceof ConfigFileError) {
    io.err(style.red(error.message));
    return 2;
  }
  if (error instanceof BackflowError) {
    io.err(style.red(`backflow${spec ? ` ${spec.name}` : ''}: ${error.message}${suffix(hintFor(error.message))}`));
    return 1;
  }
  const name = (error as { name?: string }).name;
  if (name && /Error$|Exception$/.test(name) && (error as { $metadata?: unknown }).$metadata !== undefined) {
    io.err(style.red(`backflow${spec ? ` ${spec.name}` : ''}: AWS ${name}: ${errorMessage(error)}`));
    return 1;
  }
  io.err(style.red(`backflow${spec ? ` ${spec.name}` : ''}: unexpected error`));
  io.err(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return 1;
}

const suffix = (hint: string | undefined) => (hint ? `\n  ${hint}` : '');
