/**
 * Injected into every function bundle (esbuild `inject`): CommonJS dependencies bundled into an
 * ES module still read `__filename` and `__dirname` (snowflake-sdk does, through `open`); esbuild
 * points those free names here, and renames around any module that declares its own.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bundleFile = fileURLToPath(import.meta.url);
const bundleDir = path.dirname(bundleFile);

export { bundleDir as __dirname, bundleFile as __filename };
