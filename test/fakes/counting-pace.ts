import type { RequestPace } from '#connectors/sdk/types';

/**
 * A lane's pace that grants every slot at once and counts them, with the slow-downs asked for:
 * connection-level tests assert that every request a connector makes takes a slot, and that a
 * rate limit slows the lane.
 */
export function countingPace(): RequestPace & { taken: number; throttles: number } {
  const pace = {
    taken: 0,
    throttles: 0,
    async take() {
      pace.taken++;
    },
    async throttled() {
      pace.throttles++;
    },
  };
  return pace;
}
