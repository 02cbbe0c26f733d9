import { EmbeddedDatabase } from './database.ts';
import { EmbeddedLaneQueue } from './lane-queue.ts';
import { EmbeddedPacer } from './pacer.ts';
import { EmbeddedStateStore } from './state-store.ts';

/** The state store, lanes and pacer of one embedded store directory. */
export interface EmbeddedStore {
  readonly database: EmbeddedDatabase;
  readonly state: EmbeddedStateStore;
  readonly queue: EmbeddedLaneQueue;
  readonly pacer: EmbeddedPacer;
  close(): Promise<void>;
}

export function openEmbeddedStore(dir: string, options: { exclusive?: boolean } = {}): EmbeddedStore {
  const database = EmbeddedDatabase.open(dir, options);
  return {
    database,
    state: new EmbeddedStateStore(database.state),
    queue: new EmbeddedLaneQueue(database.queue),
    pacer: new EmbeddedPacer(database.state),
    close: () => database.close(),
  };
}

export { EmbeddedDatabase, EmbeddedLaneQueue, EmbeddedPacer, EmbeddedStateStore };
