/** Installed npm packages, looked up without loading them. */
import fs from 'node:fs';

/**
 * Looks for a package without loading it. danfojs-node's override installs an alias of
 * @tensorflow/tfjs under the name @tensorflow/tfjs-node, so the real package is
 * recognised by the name in its own package.json.
 */
export function isInstalled(pkg: string): boolean {
  try {
    const manifest = require.resolve(`${pkg}/package.json`);
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).name === pkg;
  } catch {
    return false;
  }
}

/** The installed version of each of `pkgs` that is installed. */
export function installedVersions(pkgs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of pkgs) {
    if (!isInstalled(pkg)) continue;
    out[pkg] = JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version;
  }
  return out;
}
