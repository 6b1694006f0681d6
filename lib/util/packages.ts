/** Installed npm packages, looked up without loading them. */
import fs from 'node:fs';
import path from 'node:path';

/**
 * A package's own package.json, or undefined when it is not installed. Packages whose
 * "exports" hide package.json are found from their entry point.
 */
function manifestOf(pkg: string): { name: string; version: string } | undefined {
  let file: string | undefined;
  try {
    file = require.resolve(`${pkg}/package.json`);
  } catch {
    try {
      for (let dir = path.dirname(require.resolve(pkg)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
        const candidate = path.join(dir, 'package.json');
        if (fs.existsSync(candidate) && JSON.parse(fs.readFileSync(candidate, 'utf8')).name === pkg) {
          file = candidate;
          break;
        }
      }
    } catch {
      return undefined;
    }
  }
  return file ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

/**
 * Whether a package is installed. danfojs-node's override installs an alias of
 * @tensorflow/tfjs under the name @tensorflow/tfjs-node, so the real package is
 * recognised by the name in its own package.json.
 */
export function isInstalled(pkg: string): boolean {
  return manifestOf(pkg)?.name === pkg;
}

/** The installed version of each of `pkgs` that is installed. */
export function installedVersions(pkgs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of pkgs) {
    const m = manifestOf(pkg);
    if (m?.name === pkg) out[pkg] = m.version;
  }
  return out;
}
