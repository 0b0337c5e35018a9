// npm's `prepare`: builds dist/ with tsc when TypeScript is installed. `npm ci --omit=dev` has no
// TypeScript (a dev dependency); then it must not fail: it keeps a dist/ already built, or says
// how to get one (README, "Install from source").
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let hasTsc = true;
try {
  require.resolve('typescript/package.json');
} catch {
  hasTsc = false;
}
if (!hasTsc) {
  if (existsSync('dist/src/cli/main.js')) {
    console.error('avito-sync prepare: TypeScript is not installed (--omit=dev); keeping the dist/ already built.');
  } else {
    console.error('avito-sync prepare: TypeScript is not installed (--omit=dev), so dist/ was not built. Install with `npm ci` (dev dependencies included), then `npm prune --omit=dev` (README, "Install from source").');
  }
  process.exit(0);
}
execSync('npm run build', { stdio: 'inherit' });
