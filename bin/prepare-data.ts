#!/usr/bin/env node
/** `npm run prepare-data`: writes the embedded default data set as IDX files under data/embedded. */
import path from 'node:path';
import { command } from '../lib/util/cli-options';
import { ensureEmbeddedIdx, EMBEDDED_NOTE } from '../lib/data/embedded';
import { runMain } from '../lib/util/errors';
import { dataRoot } from '../lib/util/paths';

runMain(async () => {
  command('prepare-data').description('Write the embedded MNIST digits as IDX files under data/embedded (done on first use otherwise).').parse();
  const dir = ensureEmbeddedIdx(path.join(dataRoot(), 'embedded'));
  process.stdout.write(`${dir}: ${EMBEDDED_NOTE}\n`);
});
