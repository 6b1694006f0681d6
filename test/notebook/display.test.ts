import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { chartSvg } from '../../lib/notebook/chart-image';
import { htmlTable, notebookProgress, plotlyBundle } from '../../lib/notebook/display';

describe('notebook display helpers', () => {
  it('keeps training going when the kernel socket is busy, and draws the latest state later', async () => {
    const shown: string[] = [];
    let calls = 0;
    const busyEveryOther = {
      html(s: string) {
        if (calls++ % 2 === 1) throw Object.assign(new Error('Socket is busy writing'), { code: 'EBUSY' });
        shown.push(s);
      },
    };
    const p = notebookProgress(3, busyEveryOther);
    p.start('Epoch 1', 100);
    for (let i = 1; i <= 100; i++) {
      if (i % 10 === 0) p.line(`Train Epoch: 1 [${i}/100]`);
      p.update(i, 0.5, 1000);
    }
    p.stop();
    await new Promise((r) => setTimeout(r, 200));
    assert.match(shown.at(-1)!, /100\/100 \(100%\)/);
    assert.match(shown.at(-1)!, /Train Epoch: 1 \[100\/100\]/);
  });

  it('passes on errors other than a busy socket', () => {
    const p = notebookProgress(3, { html() { throw new Error('display broken'); } });
    assert.throws(() => p.start('x', 1), /display broken/);
  });

  it('renders rows as an HTML table', () => {
    const html = htmlTable([{ line: 1, time: 0.123456, contents: 'a < b' }], 3);
    assert.match(html, /<th>line<\/th><th>time<\/th><th>contents<\/th>/);
    assert.match(html, /0\.123/);
    assert.match(html, /a &lt; b/);
  });

  it('makes a chart a MIME bundle: Plotly JSON, the static SVG (also inside the HTML), no plotly.js inlined', () => {
    const figure = { data: [{ type: 'scatter', y: new Float32Array([1, 2]), name: '</script>' }], layout: { title: { text: 'Loss' } } };
    const bundle = plotlyBundle(figure, { svg: '<svg xmlns="http://www.w3.org/2000/svg"><text>Loss</text></svg>' });
    assert.deepEqual(Object.keys(bundle).sort(), ['application/vnd.plotly.v1+json', 'image/svg+xml', 'text/html', 'text/plain']);
    assert.deepEqual((bundle['application/vnd.plotly.v1+json'] as { data: { y: number[] }[] }).data[0].y, [1, 2], 'typed arrays as JSON arrays');
    const html = bundle['text/html'] as string;
    assert.match(html, /<img alt="Loss" src="data:image\/svg\+xml;base64,/);
    assert.ok(html.length < 5_000, `no plotly.js inside (${html.length} characters)`);
    assert.match(html, /nbextensions\/mnist-profiling-lab\/plotly\.min/);
    assert.equal((html.match(/<\/script>/g) ?? []).length, 1, 'a name in the data cannot end the script');
    assert.equal(bundle['text/plain'], 'Plotly chart: Loss');

    const without = plotlyBundle(figure, { error: 'no Chromium found to render the PDFs.' });
    assert.equal(without['image/svg+xml'], undefined);
    assert.match(without['text/html'] as string, /Chart "Loss": no static image \(no Chromium found/);
  });

  it('draws the static image with Plotly in a Chromium kept for the next chart', { skip: chromiumMissing() }, () => {
    const figure = { data: [{ type: 'bar', x: ['a', 'b'], y: [3, 5] }], layout: { width: 300, height: 200, title: { text: 'Two bars' } } };
    const first = chartSvg(figure);
    assert.equal(first.error, undefined);
    assert.match(first.svg!, /^<svg[^>]*class="main-svg"/);
    assert.match(first.svg!, /Two bars/);
    const started = performance.now();
    const second = chartSvg({ ...figure, layout: { ...figure.layout, title: { text: 'Again' } } });
    assert.match(second.svg!, /Again/);
    assert.ok(performance.now() - started < 60_000);
  });
});

function chromiumMissing(): string | false {
  const found = ['chromium', 'chromium-browser', 'google-chrome'].some((n) => spawnSync('which', [n]).status === 0) || !!process.env.PUPPETEER_EXECUTABLE_PATH;
  if (!found) process.stderr.write('SKIP chart image test: no system Chromium (apt-get install chromium)\n');
  return found ? false : 'no system Chromium (apt-get install chromium)';
}
