import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '#core/config/load';
import { EmbeddedDatabase } from '#core/embedded/database';
import { type EmbeddedStore, openEmbeddedStore } from '#core/embedded/store';
import type { StateStore } from '#core/ports';

/** The local runtime's state directory: `<project>/.backflow`. */
export function localStateDir(config: Config): string {
  return path.join(config.projectDir, '.backflow');
}

/** Where the embedded store lives: `<project>/.backflow/state`. */
export function embeddedDir(stateDir: string): string {
  return path.join(stateDir, 'state');
}

/**
 * Opens the embedded store of a state directory, carrying over what an older version left there
 * first: the dynalite table in `dynamodb/` (record states, runs, sequences, cursors, schemas, plan
 * progress) and the dead letters saved in `dead-letters/<lane>.jsonl`. Carried-over sources are
 * renamed (`dynamodb.migrated/`) or removed, so they are read once. `exclusive`: the runtime's
 * open, the only process that may write (see EmbeddedDatabase.open).
 */
export async function openLocalStore(stateDir: string, options: { exclusive?: boolean } = {}): Promise<EmbeddedStore> {
  const legacy = needsMigration(stateDir);
  const store = openEmbeddedStore(embeddedDir(stateDir), { exclusive: options.exclusive || legacy });
  try {
    if (legacy) await migrate(stateDir, store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

function needsMigration(stateDir: string): boolean {
  return existsSync(path.join(stateDir, 'dynamodb')) || existsSync(path.join(stateDir, 'dead-letters'));
}

async function migrate(stateDir: string, store: EmbeddedStore): Promise<void> {
  const legacyTable = path.join(stateDir, 'dynamodb');
  if (existsSync(legacyTable)) {
    const { migrateDynaliteState } = await import('./migrate-local-state.ts');
    await migrateDynaliteState(stateDir, store.state);
    renameSync(legacyTable, path.join(stateDir, 'dynamodb.migrated'));
  }
  const deadLetters = path.join(stateDir, 'dead-letters');
  if (existsSync(deadLetters)) {
    for (const file of readdirSync(deadLetters).filter((f) => f.endsWith('.jsonl'))) {
      const bodies = readFileSync(path.join(deadLetters, file), 'utf8').split('\n').filter(Boolean);
      await store.queue.sendBodiesToDeadLetter(file.slice(0, -'.jsonl'.length), bodies);
      rmSync(path.join(deadLetters, file));
    }
    rmSync(deadLetters, { recursive: true, force: true });
  }
}

export interface LocalState {
  readonly state: StateStore;
  /** False when no local run ever happened: the state is empty (and nothing was created on disk). */
  readonly persisted: boolean;
  /** Messages on the lane's dead-letter queue. */
  deadLetters(lane: string): string[];
  /** Messages on the lane (left by a run that was cut short), and on its dead-letter queue. */
  laneDepth(lane: string): { queued: number; inFlight: number; delayed: number; deadLetters: number };
  stop(): Promise<void>;
}

/**
 * The local state for commands that only read it (status, rejections, preview, plan). It opens the
 * embedded store when a run created it (carrying over an older version's state first), and
 * otherwise an empty store in a temporary directory, so reading never creates files in a project
 * that has not run yet. Reading needs no exclusive open: LMDB lets readers in beside a running writer.
 */
export async function openLocalState(config: Config): Promise<LocalState> {
  const dir = localStateDir(config);
  const persisted = EmbeddedDatabase.exists(embeddedDir(dir)) || needsMigration(dir);
  const temporary = persisted ? undefined : mkdtempSync(path.join(os.tmpdir(), 'backflow-empty-state-'));
  const store = temporary ? openEmbeddedStore(temporary) : await openLocalStore(dir);
  return {
    state: store.state,
    persisted,
    deadLetters: (lane) => store.queue.deadLetters(lane),
    laneDepth(lane) {
      const depth = store.queue.depth(lane);
      return {
        queued: depth.visible,
        inFlight: depth.inFlight,
        delayed: depth.delayed,
        deadLetters: store.queue.deadLetterDepth(lane).total,
      };
    },
    async stop() {
      await store.close();
      if (temporary) rmSync(temporary, { recursive: true, force: true });
    },
  };
}
