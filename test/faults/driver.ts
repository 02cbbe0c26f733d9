/**
 * Runs one step of a fault schedule in its own process and kills itself (SIGKILL: no `finally`,
 * no saved dead letters, in-memory queues gone) at a named point, so a crash is a real one.
 *
 *   node --import tsx test/faults/driver.ts '{"projectDir": …, "at": "after-write", "nth": 2, …}'
 *
 * Exits 0 when the point was never reached (the step then ran to its end, healthy).
 */
import path from 'node:path';
import { LocalRuntime } from '#cli/local-runtime';
import { manifests } from '#connectors/manifests';
import type { DestinationConnection } from '#connectors/sdk/destination';
import { loadConfig } from '#core/config/load';
import type { StateStore } from '#core/ports';
import type { CrashPoint } from './schedule.ts';

export interface DriverArgs {
  readonly projectDir: string;
  readonly at: CrashPoint;
  readonly nth: number;
  readonly full: boolean;
  readonly concurrency: number;
  readonly syncs: readonly string[];
  readonly lanes: readonly string[];
}

const args = JSON.parse(process.argv[2] ?? '') as DriverArgs;
const crash = () => process.kill(process.pid, 'SIGKILL');

let planning = false;
let planReads = 0;
let writes = 0;
let messagesDone = 0;

const config = loadConfig(path.join(args.projectDir, 'backflow.yml'), manifests);
const runtime = await LocalRuntime.start({
  config,
  stateDir: path.join(args.projectDir, '.backflow'),
  maxDelaySeconds: 0,
  exportConcurrency: args.concurrency,
  wrapState: (state): StateStore => {
    const wrapped = Object.create(state) as StateStore;
    // Only the planner takes the sync's lock: between taking and releasing it, reads are the plan's.
    wrapped.acquireLock = async (syncId, owner, ttlMs, force) => {
      const held = await state.acquireLock(syncId, owner, ttlMs, force);
      planning = held.acquired;
      return held;
    };
    wrapped.releaseLock = async (syncId, owner) => {
      planning = false;
      await state.releaseLock(syncId, owner);
    };
    // Mid-plan: after the nth page's state lookup, before its records are queued.
    wrapped.getRecords = async (syncId, keys) => {
      const records = await state.getRecords(syncId, keys);
      if (args.at === 'mid-plan' && planning && ++planReads === args.nth) crash();
      return records;
    };
    // Between messages: a message's states and counters are written, its SQS delete is not.
    wrapped.addToRun = async (syncId, runId, counters) => {
      const run = await state.addToRun(syncId, runId, counters);
      if (args.at === 'between-messages' && !planning && counters.messagesDone && ++messagesDone === args.nth) crash();
      return run;
    };
    return wrapped;
  },
  wrapDestination: (_lane, connection): DestinationConnection => ({
    ...connection,
    // After the destination write, before the state write (and during a redrive, the same).
    write: async (batch) => {
      const outcomes = await connection.write(batch);
      if ((args.at === 'after-write' || args.at === 'redrive') && ++writes === args.nth) crash();
      return outcomes;
    },
  }),
});
if (args.at === 'redrive') for (const lane of args.lanes) await runtime.redrive(lane);
else await runtime.run(args.syncs, { full: args.full });
await runtime.stop();
