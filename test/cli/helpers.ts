import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { runCli } from '#cli/app';
import { memoryIo } from '#cli/io';
import { EmbeddedDatabase } from '#core/embedded/database';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/bin.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `backflow` process (node cli/bin.js) in `cwd`. */
export function backflow(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NO_COLOR: '1', ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Parses the JSON a `--json` command printed, with the output in the message when it is not JSON. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}

/** A fresh project made by `backflow init` (in-process: it only writes files). */
export async function initProject(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-cli-'));
  const io = memoryIo({ cwd: dir });
  const code = await runCli(['init'], { io });
  if (code !== 0) throw new Error(`init failed: ${io.stderr}`);
  return dir;
}

export function editFile(file: string, edit: (text: string) => string): void {
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
}

/**
 * Runs SQL on a DuckDB file with an instance of its own, closed afterwards: the spawned CLI
 * must be able to open the file next (DuckDB allows one process per file).
 */
export async function duckdb(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Every entry of the local embedded store (state and lanes), sorted; undefined when no run created it. */
export async function stateSnapshot(projectDir: string): Promise<string | undefined> {
  const dir = path.join(projectDir, '.backflow', 'state');
  if (!EmbeddedDatabase.exists(dir)) return undefined;
  const database = EmbeddedDatabase.open(dir);
  try {
    const items: string[] = [];
    for (const db of [database.state, database.queue]) {
      for (const { key, value } of db.getRange({})) items.push(JSON.stringify([key, value]));
    }
    return items.sort().join('\n');
  } finally {
    await database.close();
  }
}
