import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import { BackflowError } from '#core/errors';

/**
 * The embedded store: one LMDB environment in a directory (`<project>/.backflow/state` for the
 * local runtime), in this process, with no HTTP in between. Two sub-databases: `state` (what the
 * DynamoDB table holds on AWS) and `queue` (what the SQS lanes hold).
 *
 * Reads are synchronous memory-mapped lookups. Writes are batched by lmdb-js into one transaction
 * per event-loop turn and committed on its writer thread; a write's promise resolves once its
 * transaction is committed (visible, and on disk as far as a process crash goes). The flush to the
 * disk itself overlaps the next transactions (`overlappingSync`): a power cut can lose the last
 * transactions committed before it, never a part of one, and never an earlier one (LMDB keeps its
 * integrity by switching meta pages only after their data is flushed). docs/performance.md says
 * why that is safe for Backflow: state only ever lags what the destination holds.
 */
export class EmbeddedDatabase {
  private constructor(
    readonly dir: string,
    readonly root: RootDatabase,
    readonly state: Database,
    readonly queue: Database,
    private readonly ownerFile: string | undefined,
  ) {}

  /**
   * Opens (creating) the store in `dir`. `exclusive`: this process becomes the only one that may
   * write it (the local runtime keeps claims and in-flight messages in memory), refused with a
   * clear error while another live process holds it; a holder that died (killed, crashed) leaves
   * its pid behind, which is taken over.
   */
  static open(dir: string, options: { exclusive?: boolean } = {}): EmbeddedDatabase {
    mkdirSync(dir, { recursive: true });
    const ownerFile = options.exclusive ? takeOwnership(dir) : undefined;
    try {
      const root = open({ path: path.join(dir, 'data.mdb'), maxDbs: 4, noSubdir: true });
      const state = root.openDB({ name: 'state' });
      const queue = root.openDB({ name: 'queue' });
      return new EmbeddedDatabase(dir, root, state, queue, ownerFile);
    } catch (error) {
      if (ownerFile) rmSync(ownerFile, { force: true });
      throw error;
    }
  }

  /** Whether a store exists in `dir` (a run created it). */
  static exists(dir: string): boolean {
    return existsSync(path.join(dir, 'data.mdb'));
  }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
    if (this.ownerFile) rmSync(this.ownerFile, { force: true });
  }
}

/** A pid file with O_EXCL; a stale one (its process is gone) is replaced. */
function takeOwnership(dir: string): string {
  const file = path.join(dir, 'owner.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new BackflowError(
        `the local state in ${path.dirname(dir)} is in use by another backflow process (pid ${pid}; a run still going?): wait for it to finish and try again`,
      );
    }
    // Its holder died without letting go (killed, crashed): take it over.
    rmSync(file, { force: true });
  }
  throw new BackflowError(`could not take the local state in ${dir}: another process keeps taking it`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
