import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { manifests } from '#connectors/manifests';
import { loadConfig } from '#core/config/load';
import { BackflowStack, type BackflowStackProps } from '../../infra/BackflowStack.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** The feature flags and settings of cdk.json, so test stacks synthesize like `cdk synth`. */
export const CDK_CONTEXT = (JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: object })
  .context;

/** Writes a backflow.yml into a fresh temp directory and returns its path. */
export function writeConfig(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'backflow-infra-')), 'backflow.yml');
  writeFileSync(file, text);
  return file;
}

export interface TestStack {
  readonly stack: BackflowStack;
  readonly template: Template;
}

/** A Backflow stack from a config text, synthesized without bundling the functions. */
export function synthStack(configText: string, props: Partial<BackflowStackProps> = {}): TestStack {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const stack = new BackflowStack(app, 'Test', { config: loadConfig(writeConfig(configText), manifests), ...props });
  return { stack, template: Template.fromStack(stack) };
}

/** The resources of one type, by logical id. */
export function resources(template: Template, type: string): Record<string, { Properties: Record<string, unknown> }> {
  return template.findResources(type) as Record<string, { Properties: Record<string, unknown> }>;
}
