import { describe, expect, it } from 'vitest';
import { frontEnd } from '#cli/ui/bundle';

describe('backflow ui: the front-end bundle', () => {
  it('is one small JS and one CSS file, built once and then read from the cache, with no external reference', async () => {
    await frontEnd();
    const again = await frontEnd();
    expect(again.cached).toBe(true);
    expect(again.dir).toMatch(/node_modules\/\.cache\/backflow-ui\/[0-9a-f]{16}$/);
    expect(again.js.length).toBeLessThan(100_000);
    expect(again.js).not.toMatch(/from\s*["']node:|require\(/);
    // The only URLs are XML namespaces (SVG), never something to fetch.
    const urls = [...again.js.matchAll(/https?:\/\/[\w./-]+/g)].map((m) => m[0]);
    for (const url of urls) expect(url).toMatch(/^http:\/\/www\.w3\.org\//);
    expect(again.css).toContain('--accent');
    expect(again.css).not.toMatch(/@import|url\(/);
  });
});
