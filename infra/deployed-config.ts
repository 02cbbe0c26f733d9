import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseDocument, stringify } from 'yaml';
import { manifests } from '#connectors/manifests';
import { type Config, parseConfig } from '#core/config/load';

/** The same references core/config/load.ts resolves: `${VAR}`, `${VAR:-default}`, and `$${` for a literal `${`. */
const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * The config file the functions load (as backflow.yml next to their handler). `${VAR}` references
 * are resolved here, with the environment of the machine running `cdk synth`, because the
 * functions do not have those variables; a literal `${` is escaped again as `$${`. The result is
 * checked to load, with an empty environment, into exactly the config that was validated.
 */
export function deployedConfigText(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const source = readFileSync(config.file, 'utf8');
  const resolved = resolveReferences(parseDocument(source).toJS() as unknown, env);
  const text = `# Deployed by Backflow's CDK app from ${path.basename(config.file)}, environment references resolved.\n${stringify(resolved, { lineWidth: 0 })}`;
  const deployed = parseConfig(text, 'backflow.yml', manifests, {});
  const same = (['sources', 'models', 'destinations', 'syncs'] as const).every((key) =>
    isDeepStrictEqual(deployed[key], config[key]),
  );
  if (!same) {
    throw new Error(
      `the config deployed from ${config.file} does not load back to the validated config: please report this`,
    );
  }
  return text;
}

/**
 * Writes the deployed config where the bundling hook copies it from: a file named by its content
 * hash under the OS temp directory, so synths of the same config share it.
 */
export function stageDeployedConfig(text: string): string {
  const dir = path.join(os.tmpdir(), 'backflow-cdk');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.yml`);
  writeFileSync(file, text);
  return file;
}

function resolveReferences(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    const resolved = value.replace(ENV_REF, (match, variable: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const found = env[variable!];
      return found !== undefined && found !== '' ? found : (fallback ?? match);
    });
    return resolved.replaceAll('${', '$${');
  }
  if (Array.isArray(value)) return value.map((v) => resolveReferences(v, env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveReferences(v, env)]));
  }
  return value;
}
