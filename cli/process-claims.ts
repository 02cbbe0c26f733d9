import type { ClaimResult, StateStore } from '#core/ports';

/**
 * Claims kept in this process's memory, for the local runtime: its state files are locked to one
 * process (see `assertStateFree`), so every exporter that could deliver a key lives here, and a
 * claim needs no write to the state table (on dynalite, that write would double the cost of each
 * record). Same rule as the DynamoDB claim: one version of a key at a time, none older than what
 * is stored. A claim is taken first and the stored version read after, so no newer write can slip
 * in between the two.
 */
export function withProcessClaims(state: StateStore): StateStore {
  const claims = new Map<string, { version: number; until: number }>();
  const id = (syncId: string, key: string) => `${syncId}\u0000${key}`;
  const wrapped = Object.create(state) as StateStore;
  wrapped.claimRecords = async (syncId, keys, version, now, until) => {
    const result: ClaimResult = { claimed: [], stale: [], busy: [] };
    const taken: string[] = [];
    for (const key of new Set(keys)) {
      const claim = claims.get(id(syncId, key));
      if (claim && claim.version !== version && claim.until >= now) {
        result.busy.push({ key, until: claim.until });
        continue;
      }
      claims.set(id(syncId, key), { version, until });
      taken.push(key);
    }
    const stored = await state.getRecords(syncId, taken);
    for (const key of taken) {
      if ((stored.get(key)?.version ?? 0) > version) {
        claims.delete(id(syncId, key));
        result.stale.push(key);
      } else result.claimed.push(key);
    }
    return result;
  };
  wrapped.releaseClaims = async (syncId, keys, version) => {
    for (const key of keys) {
      if (claims.get(id(syncId, key))?.version === version) claims.delete(id(syncId, key));
    }
  };
  wrapped.putRecords = async (syncId, states, now) => {
    const result = await state.putRecords(syncId, states, now);
    for (const s of states) {
      if (claims.get(id(syncId, s.key))?.version === s.version) claims.delete(id(syncId, s.key));
    }
    return result;
  };
  return wrapped;
}
