import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifests } from '#connectors/manifests';
import { loadConfig, parseConfig } from '#core/config/load';
import { deployedConfigText, stageDeployedConfig } from '../../infra/deployed-config.ts';
import { writeConfig } from './stacks.ts';

const CONFIG = `
version: 1
sources:
  warehouse:
    type: duckdb
    path: \${WAREHOUSE_FILE:-warehouse.duckdb}
models:
  people:
    source: warehouse
    sql: select id, email, '$\${not a reference}' as note from people
    primary_key: id
destinations:
  hooks:
    type: webhook
    url: https://\${HOOK_HOST}/backflow
syncs:
  people-to-hooks:
    model: people
    destination: hooks
    object: contacts
    match: { email: email }
    schedule: rate(1 hour)
`;

describe('deployed config', () => {
  const env = { HOOK_HOST: 'hooks.example.com' };
  const config = loadConfig(writeConfig(CONFIG), manifests, env);
  const text = deployedConfigText(config, env);

  it('resolves environment references with the synth environment, so the functions need none', () => {
    expect(text).toContain('url: https://hooks.example.com/backflow');
    expect(text).toContain('path: warehouse.duckdb');
    const deployed = parseConfig(text, 'backflow.yml', manifests, {});
    expect(deployed.syncs).toEqual(config.syncs);
    expect(deployed.destinations).toEqual(config.destinations);
    expect(deployed.sources).toEqual(config.sources);
  });

  it('keeps an escaped $${ literal through the round trip', () => {
    const deployed = parseConfig(text, 'backflow.yml', manifests, {});
    expect(deployed.models.people?.sql).toBe(`select id, email, '\${not a reference}' as note from people`);
  });

  it('stages the text in a file named by its content', () => {
    const file = stageDeployedConfig(text);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(stageDeployedConfig(text)).toBe(file);
  });
});
