import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { build, type Metafile } from 'esbuild';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The vendor drivers: only a connector's runtime may load one. */
const DRIVERS = ['snowflake-sdk', 'mysql2', 'pg', '@duckdb/node-api'];

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

/** Every module specifier of a file, `import type`, re-exports and `import()` included, as TypeScript parses them. */
function specifiers(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** The repository files and the packages a bundle of `entryPoints` would hold (packages left unbundled). */
async function importGraph(entryPoints: string[]): Promise<{ files: string[]; packages: string[] }> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outdir: 'out',
    logLevel: 'silent',
  });
  const inputs = (result.metafile as Metafile).inputs;
  const packages = new Set<string>();
  for (const input of Object.values(inputs)) {
    for (const imported of input.imports) {
      if (!imported.external || imported.path.startsWith('node:')) continue;
      const parts = imported.path.split('/');
      packages.add(imported.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return { files: Object.keys(inputs), packages: [...packages].sort() };
}

const isRuntime = (file: string) => /^connectors\/(sources|destinations)\/[^/]+\/index\.ts$/.test(file);

describe('module boundaries', () => {
  it('connectors import nothing from core, functions, cli or infra: their contract is connectors/sdk', () => {
    const offending: string[] = [];
    for (const file of tsFiles('connectors')) {
      for (const specifier of specifiers(file)) {
        const target = specifier.startsWith('.')
          ? path.relative(ROOT, path.resolve(ROOT, path.dirname(file), specifier))
          : specifier.replace(/^#/, '');
        if (/^(core|functions|cli|infra|test)\//.test(target)) offending.push(`${file} imports ${specifier}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('the manifests hold zod and data: no connector runtime, no vendor driver', async () => {
    const { files, packages } = await importGraph(['connectors/manifests.ts']);
    expect(files.filter(isRuntime)).toEqual([]);
    expect(files).not.toContain('connectors/registry.ts');
    expect(packages).toEqual(['zod']);
  });

  it('core and infra (cdk synth) import no registry, no connector runtime and no vendor driver', async () => {
    const { files, packages } = await importGraph([
      'core/config/load.ts',
      'core/connect.ts',
      'core/planner.ts',
      'core/exporter.ts',
      'infra/app.ts',
    ]);
    expect(files.filter((f) => isRuntime(f) || f === 'connectors/registry.ts')).toEqual([]);
    expect(packages.filter((p) => DRIVERS.includes(p))).toEqual([]);
  });
});
