// md-to-pdf pulls puppeteer, whose install would download a browser; offline
// machines cannot, so we use a system Chromium instead (see lib/report/chromium).
module.exports = { skipDownload: true };
