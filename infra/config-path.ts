import { existsSync } from 'node:fs';
import path from 'node:path';

/** Where this repository keeps a runnable example, used when the working directory has no backflow.yml. */
export const EXAMPLE_CONFIG = 'examples/quickstart/backflow.yml';

/**
 * The config file to deploy: the `config` context value (`cdk deploy -c config=path/to/backflow.yml`),
 * else ./backflow.yml, else (in a checkout of this repository) the quickstart example, with a note.
 */
export function chooseConfigFile(contextValue: unknown, cwd: string): { file: string; note?: string } {
  if (typeof contextValue === 'string' && contextValue !== '') return { file: path.resolve(cwd, contextValue) };
  const own = path.resolve(cwd, 'backflow.yml');
  const example = path.resolve(cwd, EXAMPLE_CONFIG);
  if (existsSync(own) || !existsSync(example)) return { file: own };
  return {
    file: example,
    note: `backflow: no backflow.yml here and no -c config=...: synthesizing the example ${EXAMPLE_CONFIG}`,
  };
}
