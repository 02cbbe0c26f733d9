import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.join(path.dirname(fileURLToPath(import.meta.url)), 'web');
const ROOT = path.resolve(WEB, '../../..');

/**
 * The front end, bundled by esbuild into one JS and one CSS file on first use and cached under
 * node_modules/.cache/backflow-ui/<hash of the sources>/ (or `fallbackDir`/<hash> when that is
 * read-only): rebuilt only when a source (or the preact / esbuild version) changes. No build step
 * in `npm ci`, nothing to set up.
 */
export async function frontEnd(
  fallbackDir?: string,
): Promise<{ js: string; css: string; cached: boolean; dir: string }> {
  const hash = sourcesHash();
  try {
    return await buildInto(path.join(ROOT, 'node_modules', '.cache', 'backflow-ui', hash));
  } catch (error) {
    // A read-only installation: the project's own .backflow/ui/ (never a shared temporary folder,
    // where another local user could plant a script).
    const code = (error as { code?: string }).code;
    if (!fallbackDir || (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM')) throw error;
    return buildInto(path.join(fallbackDir, hash));
  }
}

async function buildInto(dir: string): Promise<{ js: string; css: string; cached: boolean; dir: string }> {
  const js = path.join(dir, 'app.js');
  const css = path.join(dir, 'app.css');
  if (existsSync(js) && existsSync(css)) {
    return { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8'), cached: true, dir };
  }
  // Fails with EACCES / EROFS where it cannot be written (the caller falls back).
  mkdirSync(path.dirname(dir), { recursive: true });
  accessSync(path.dirname(dir), constants.W_OK);
  const { build } = await import('esbuild');
  const tmp = `${dir}.tmp-${process.pid}`;
  await build({
    entryPoints: { app: path.join(WEB, 'main.tsx') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: tmp,
    legalComments: 'none',
    logLevel: 'silent',
    absWorkingDir: ROOT,
  });
  try {
    renameSync(tmp, dir);
  } catch {
    // Another process built it first: theirs is the same.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8'), cached: false, dir };
}

function sourcesHash(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(WEB, { recursive: true }).map(String).sort()) {
    const full = path.join(WEB, file);
    if (!/\.(tsx?|css)$/.test(file)) continue;
    hash.update(file).update(readFileSync(full));
  }
  for (const pkg of ['preact', 'esbuild']) {
    hash.update(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json')));
  }
  return hash.digest('hex').slice(0, 16);
}
