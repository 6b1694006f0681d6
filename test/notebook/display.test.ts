import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { htmlTable, notebookProgress, plotlyHtml } from '../../lib/notebook/display';

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

  it('renders rows as an HTML table and ships plotly.js with the first chart only', () => {
    const html = htmlTable([{ line: 1, time: 0.123456, contents: 'a < b' }], 3);
    assert.match(html, /<th>line<\/th><th>time<\/th><th>contents<\/th>/);
    assert.match(html, /0\.123/);
    assert.match(html, /a &lt; b/);
    const first = plotlyHtml({ data: [], layout: { width: 300 } });
    const second = plotlyHtml({ data: [], layout: { width: 300 } });
    assert.ok(first.length > 1_000_000 && second.length < 2_000, 'the library travels once');
  });
});
