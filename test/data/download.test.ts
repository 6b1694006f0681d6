import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { downloadMnist } from '../../lib/data/download';
import { encodeIdx } from '../../lib/data/idx';
import { MNIST_FILES } from '../../lib/data/mnist-files';
import { loadFolder } from '../../lib/data/dataset';
import { UserError } from '../../lib/util/errors';
import { spawn } from 'node:child_process';
import { projectRoot } from '../../lib/util/paths';
import { tmpDir } from '../helpers';

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

// Small but valid gzip IDX files standing in for the official ones.
const files: Record<string, Buffer> = {
  [`${MNIST_FILES.trainImages}.gz`]: zlib.gzipSync(encodeIdx([20, 28, 28], new Uint8Array(20 * 784).fill(3))),
  [`${MNIST_FILES.trainLabels}.gz`]: zlib.gzipSync(encodeIdx([20], Uint8Array.from({ length: 20 }, (_, i) => i % 10))),
  [`${MNIST_FILES.testImages}.gz`]: zlib.gzipSync(encodeIdx([10, 28, 28], new Uint8Array(10 * 784).fill(4))),
  [`${MNIST_FILES.testLabels}.gz`]: zlib.gzipSync(encodeIdx([10], Uint8Array.from({ length: 10 }, (_, i) => i))),
};
const sums = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, md5(v)]));

describe('MNIST download', () => {
  let server: http.Server;
  let base = '';
  const hits: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const [, mode, name] = (req.url ?? '').split('/');
      hits.push(`${mode}/${name}`);
      const body = files[name];
      if (!body) return void res.writeHead(404).end();
      if (mode === 'good') return void res.writeHead(200, { 'content-length': body.length }).end(body);
      if (mode === 'corrupt') {
        const bad = Buffer.from(body);
        bad[bad.length - 5] ^= 0xff;
        return void res.writeHead(200).end(bad);
      }
      // 'silent': accept the request and never answer.
      if (mode === 'silent') return;
      // 'slow': promise a large file, send its first bytes, then nothing.
      if (mode === 'slow') return void res.writeHead(200, { 'content-length': 10_000_000 }).write(body.subarray(0, 64));
      // 'truncated': promise the whole file, send half, then drop the connection.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections(); // the 'slow' responses never end by themselves
    server.close();
  });

  it('downloads and verifies every file from a good mirror', async () => {
    const dir = tmpDir();
    await downloadMnist({ dir, mirrors: [`${base}/good/`], md5: sums });
    assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(files).sort());
    assert.equal(loadFolder(dir).train.count, 20);
  });

  it('falls through a corrupted and a truncated mirror to a good one, leaving no partial file', async () => {
    const dir = tmpDir();
    hits.length = 0;
    await downloadMnist({ dir, mirrors: [`${base}/corrupt/`, `${base}/truncated/`, `${base}/good/`], md5: sums });
    assert.ok(hits.includes(`corrupt/${MNIST_FILES.trainImages}.gz`) && hits.includes(`truncated/${MNIST_FILES.trainImages}.gz`));
    for (const [name, body] of Object.entries(files)) assert.equal(md5(fs.readFileSync(path.join(dir, name))), md5(body));
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.part')), []);
  });

  it('fails with every mirror and its reason named, and writes nothing', async () => {
    const dir = tmpDir();
    await assert.rejects(
      downloadMnist({ dir, mirrors: [`${base}/corrupt/`, `${base}/truncated/`], md5: sums }),
      (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /corrupt\/train-images-idx3-ubyte\.gz: md5 [0-9a-f]{32}, expected/);
        assert.match(err.message, /truncated\/train-images-idx3-ubyte\.gz: /);
        assert.match(err.message, /--data DIR/);
        return true;
      },
    );
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('fails fast when no mirror can be reached', async () => {
    const started = Date.now();
    // Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    await assert.rejects(downloadMnist({ dir: tmpDir(), mirrors: ['http://127.0.0.1:9/a/', 'http://127.0.0.1:9/b/'], md5: sums }),
      /127\.0\.0\.1:9\/a\/.*\n.*127\.0\.0\.1:9\/b\//);
    assert.ok(Date.now() - started < 10_000);
  });

  for (const mode of ['silent', 'slow']) {
    it(`a ${mode} mirror times out even when garbage is collected meanwhile (Node issue 57736), and the next mirror is tried`, async () => {
      // A process of its own, with --expose-gc: collections every 50 ms while the request waits.
      const dir = tmpDir('download-timeout-');
      const script = `
        const { downloadMnist } = require(${JSON.stringify(path.join(projectRoot(), 'dist', 'lib', 'data', 'download.js'))});
        const collecting = setInterval(() => globalThis.gc(), 50);
        downloadMnist({ dir: ${JSON.stringify(dir)}, mirrors: [${JSON.stringify(`${base}/${mode}/`)}, ${JSON.stringify(`${base}/good/`)}],
          md5: ${JSON.stringify(sums)}, timeoutMs: 800 })
          .then(() => { clearInterval(collecting); console.log('done'); }, (e) => { clearInterval(collecting); console.log('failed: ' + e.message); process.exitCode = 2; });`;
      const started = performance.now();
      const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (out += b));
      const code = await new Promise((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('close', (c) => { clearTimeout(kill); resolve(c); });
      });
      const seconds = (performance.now() - started) / 1000;
      assert.equal(code, 0, `exit ${code} after ${seconds.toFixed(1)} s: ${out}`);
      assert.match(out, /done/);
      // Four files, each waiting 0.8 s on the mirror that does not answer, then from the good one.
      assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s`);
      assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(files).sort());
    });
  }

  it('Ctrl-C during a download stops within a second and removes the partial file', async () => {
    const data = tmpDir('download-stop-');
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'train.js'), '--download', '--epochs', '1'], {
      env: { ...process.env, MNIST_LAB_DATA: data, MNIST_MIRRORS: `${base}/slow/` }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const closed = new Promise((r) => child.on('close', r));
    hits.length = 0; // this child's request, not an earlier test's
    for (let i = 0; i < 200 && !hits.some((h) => h.startsWith('slow/')); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200)); // the first bytes are in the partial file
    const sent = performance.now();
    child.kill('SIGINT');
    const code = await closed;
    const seconds = (performance.now() - sent) / 1000;
    assert.equal(code, 130, stderr);
    assert.ok(seconds < 1.5, `stopped after ${seconds.toFixed(2)} s`);
    assert.match(stderr, /stopped by SIGINT while downloading train-images-idx3-ubyte\.gz: the partial file was removed/);
    const left = fs.existsSync(path.join(data, 'mnist')) ? fs.readdirSync(path.join(data, 'mnist')) : [];
    assert.deepEqual(left.filter((f) => f.includes('.part')), [], 'no partial file');
  });
});
