/**
 * Where the CLI writes, and how it looks there. Commands never touch `process` directly, so the
 * whole CLI runs in-process in tests with a captured `Io`.
 */
export interface Io {
  /** Directory relative paths (`--project`, `--config`, `init [dir]`) resolve against. */
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Writes one line (or several) to stdout. */
  out(text: string): void;
  /** Writes one line (or several) to stderr. */
  err(text: string): void;
  /** Writes to stderr as is: progress lines rewrite themselves with `\r`. */
  errRaw(text: string): void;
}

export function processIo(): Io {
  return {
    cwd: process.cwd(),
    env: process.env,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    errRaw: (text) => process.stderr.write(text),
  };
}

/** An `Io` that keeps what was written (tests, in-process calls). */
export interface MemoryIo extends Io {
  readonly stdout: string;
  readonly stderr: string;
}

export function memoryIo(options: Partial<Pick<Io, 'cwd' | 'env' | 'stdoutIsTTY' | 'stderrIsTTY'>> = {}): MemoryIo {
  let stdout = '';
  let stderr = '';
  return {
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? {},
    stdoutIsTTY: options.stdoutIsTTY ?? false,
    stderrIsTTY: options.stderrIsTTY ?? false,
    out: (text) => {
      stdout += `${text}\n`;
    },
    err: (text) => {
      stderr += `${text}\n`;
    },
    errRaw: (text) => {
      stderr += text;
    },
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

export interface Style {
  readonly enabled: boolean;
  readonly green: (text: string) => string;
  readonly red: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly cyan: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
}

/**
 * Colour only on a terminal, never when NO_COLOR is set (https://no-color.org); FORCE_COLOR
 * forces it (CI logs that render ANSI).
 */
export function colorEnabled(isTTY: boolean, env: Io['env']): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return isTTY && env.TERM !== 'dumb';
}

export function createStyle(enabled: boolean): Style {
  const paint = (open: number, close: number) => (text: string) =>
    enabled ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    enabled,
    green: paint(32, 39),
    red: paint(31, 39),
    yellow: paint(33, 39),
    cyan: paint(36, 39),
    dim: paint(2, 22),
    bold: paint(1, 22),
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are control characters.
const ANSI = /\u001b\[[0-9;]*m/g;

/** Width of a string on a terminal, colours excluded. */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

export const formatCount = (value: number): string => value.toLocaleString('en-US');
