import { launchBrowser } from './test/browser/support.js';
const b = await launchBrowser();
const p = await b.newPage({ viewport: { width: 700, height: 700 }, deviceScaleFactor: 1.5 });
const [f, x, y] = process.argv.slice(2);
await p.goto('file://' + process.cwd() + '/' + f);
await p.evaluate(([x, y]) => window.scrollTo(Number(x), Number(y)), [x, y]);
await p.screenshot({ path: '/tmp/charts/crop.png' });
await b.close();
