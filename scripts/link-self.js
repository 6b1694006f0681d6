// postinstall: makes the package reachable by its own name (`import ... from 'mnist-profiling-lab'`)
// from the notebooks. Node resolves a package's own name through package.json "exports", but
// tslab compiles cells with TypeScript's Node 10 resolution, which looks only in node_modules.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const link = path.join(root, 'node_modules', require('../package.json').name);
let current = '';
try {
  current = fs.realpathSync(link);
} catch { /* no link yet */ }
if (current !== root) {
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync('..', link, 'dir');
}
