/**
 * The `backflow` process: runs the CLI on the real argv, stdout and stderr, and sets the exit
 * code. Everything else lives in app.ts, so tests can run the CLI in-process.
 */
import { runCli } from './app.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runCli(process.argv.slice(2));
