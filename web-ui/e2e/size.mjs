// Measures what a browser downloads on first load — index.html and the
// scripts, styles and icons it names — gzipped, and fails above the budget.
// Usage: node e2e/size.mjs http://127.0.0.1:8080

import { gzipSync } from 'node:zlib';

const BUDGET = 200 * 1024;
const base = process.argv[2] ?? process.env.SPACES_E2E_URL;
if (!base) {
  console.error('usage: node e2e/size.mjs <node url>');
  process.exit(2);
}

async function get(path) {
  const response = await fetch(new URL(path, base));
  if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

const html = await get('/');
const text = html.toString('utf8');
const assets = [...text.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
let total = gzipSync(html, { level: 9 }).length;
const rows = [['index.html', html.length, total]];
for (const path of assets) {
  if (/^[a-z]+:\/\//i.test(path)) throw new Error(`first load names an external URL: ${path}`);
  const body = await get(path);
  const gz = gzipSync(body, { level: 9 }).length;
  rows.push([path, body.length, gz]);
  total += gz;
}
// Fonts the styles name (the emoji font) count too, whether or not this
// browser would fetch them.
for (const [path] of rows.slice(1)) {
  if (!path.endsWith('.css')) continue;
  const css = (await get(path)).toString('utf8');
  for (const [, ref] of css.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g)) {
    if (ref.startsWith('data:')) continue;
    if (/^[a-z]+:\/\//i.test(ref)) throw new Error(`styles name an external URL: ${ref}`);
    const body = await get(new URL(ref, new URL(path, base)).pathname);
    const gz = gzipSync(body, { level: 9 }).length;
    rows.push([ref, body.length, gz]);
    total += gz;
  }
}
for (const [path, raw, gz] of rows) {
  console.log(`  ${path.padEnd(36)} ${(raw / 1024).toFixed(1).padStart(7)} KB  ${(gz / 1024).toFixed(1).padStart(6)} KB gzipped`);
}
console.log(`first load: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
if (total >= BUDGET) {
  console.error('first load is over budget');
  process.exit(1);
}
