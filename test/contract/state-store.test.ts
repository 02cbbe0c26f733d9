import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalDynamo } from '#cli/local-aws';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { openEmbeddedStore } from '#core/embedded/store';
import { stateStoreContract } from './state-store.contract.ts';

stateStoreContract('DynamoDB adapter on dynalite', async () => {
  const dynamo = await startLocalDynamo(undefined);
  return { state: new DynamoStateStore(dynamo.dynamodb, dynamo.table), close: () => dynamo.stop() };
});

stateStoreContract('embedded store (LMDB)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-contract-'));
  const store = openEmbeddedStore(dir, { exclusive: true });
  return {
    state: store.state,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
