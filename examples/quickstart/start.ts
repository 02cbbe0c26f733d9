/**
 * `npm start`: builds the demo warehouse once (seed.ts), then runs the quickstart's sync with the
 * CLI — in one process, so the quickstart pays for one Node start, not two.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../cli/app.ts';
import { ensureWarehouse } from './seed.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await ensureWarehouse();
const project = path.relative(process.cwd(), path.dirname(fileURLToPath(import.meta.url))) || '.';
process.exitCode = await runCli(['run', '--project', project, ...process.argv.slice(2)]);
