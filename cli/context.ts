import type { Config } from '#core/config/load';
import { suggest } from '#core/config/suggest';
import { BackflowError } from '#core/errors';
import type { Io, Style } from './io.ts';
import type { Progress } from './progress.ts';
import type { RemoteClients, RemoteOptions } from './remote.ts';

/** A wrong command line: unknown command or option, missing or extra argument. Exit code 2. */
export class UsageError extends BackflowError {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The CloudFormation stack `--remote` acts on without `--stack`. */
export const DEFAULT_STACK = 'Backflow';

export type OptionValue = string | boolean | string[] | undefined;

/** Everything a command needs: parsed arguments, output, the config, and AWS clients on demand. */
export interface CommandContext {
  readonly name: string;
  readonly io: Io;
  /** Colours for stdout. */
  readonly style: Style;
  /** Colours for stderr. */
  readonly errStyle: Style;
  readonly positionals: readonly string[];
  readonly options: Readonly<Record<string, OptionValue>>;
  readonly json: boolean;
  /** Absolute path of backflow.yml, from `--config` or `--project`. */
  readonly configFile: string;
  /** Loads and validates backflow.yml (throws ConfigFileError listing every problem). */
  config(): Promise<Config>;
  /** AWS clients for `--remote` (injected in tests). */
  remote(): Promise<RemoteClients>;
  readonly remoteOptions: RemoteOptions;
  readonly progress: Progress;
  /** The command's `--help` text. */
  readonly usage: string;
}

export function flag(ctx: CommandContext, name: string): boolean {
  return ctx.options[name] === true;
}

export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.options[name];
  return typeof value === 'string' ? value : undefined;
}

export function listOption(ctx: CommandContext, name: string): string[] {
  const value = ctx.options[name];
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

/** A positive integer option, or its default. */
export function intOption(ctx: CommandContext, name: string, fallback: number): number {
  const raw = stringOption(ctx, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError(`--${name} expects a positive whole number, got "${raw}"`, ctx.usage);
  }
  return value;
}

/** Checks the number of positional arguments: `[min, max]`. */
export function positionals(ctx: CommandContext, min: number, max: number, names: string): readonly string[] {
  if (ctx.positionals.length < min) throw new UsageError(`missing ${names}`, ctx.usage);
  if (ctx.positionals.length > max) {
    throw new UsageError(`unexpected argument "${ctx.positionals[max]}"`, ctx.usage);
  }
  return ctx.positionals;
}

/** A name from the config, or a usage error listing the names there are (with a "did you mean"). */
export function pick<T>(kind: string, name: string, entries: Readonly<Record<string, T>>): T {
  const found = entries[name];
  if (found !== undefined) return found;
  const names = Object.keys(entries);
  const hint = suggest(name, names);
  throw new UsageError(
    `no ${kind} named "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; ${names.length > 0 ? `${kind}s are ${names.join(', ')}` : `the config has no ${kind}s`}`,
  );
}

/** ` --stack NAME` when the stack is not the default one, for the commands a message suggests. */
export function stackFlag(ctx: CommandContext): string {
  return ctx.remoteOptions.stack === DEFAULT_STACK ? '' : ` --stack ${ctx.remoteOptions.stack}`;
}
