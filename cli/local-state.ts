import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import type { Config } from '#core/config/load';
import type { StateStore } from '#core/ports';
import { startLocalDynamo } from './local-aws.ts';

/** The local runtime's state directory: `<project>/.backflow`. */
export function localStateDir(config: Config): string {
  return path.join(config.projectDir, '.backflow');
}

export function deadLetterFile(config: Config, lane: string): string {
  return path.join(localStateDir(config), 'dead-letters', `${lane}.jsonl`);
}

/** Message bodies the local runtime saved from a lane's DLQ at the end of its last run. */
export function savedDeadLetters(config: Config, lane: string): string[] {
  const file = deadLetterFile(config, lane);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

export interface LocalState {
  readonly state: StateStore;
  /** False when no local run ever happened: the state is empty (and nothing was created on disk). */
  readonly persisted: boolean;
  stop(): Promise<void>;
}

/**
 * The local state for commands that only read it (status, rejections, preview, plan). It opens
 * `.backflow/dynamodb` when a run created it, and otherwise an empty in-memory table, so reading
 * never creates files in a project that has not run yet.
 */
export async function openLocalState(config: Config): Promise<LocalState> {
  const dir = localStateDir(config);
  const persisted = existsSync(path.join(dir, 'dynamodb'));
  const aws = await startLocalDynamo(persisted ? dir : undefined);
  return { state: new DynamoStateStore(aws.dynamodb, aws.table), persisted, stop: () => aws.stop() };
}
