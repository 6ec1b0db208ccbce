// Per-call cost of snapsafe's Node binding against node:crypto, in one run
// (node test/bench.js [milliseconds per measurement, default 300]). Prints one line per
// pair, ratio = snapsafe / node:crypto (below 1: snapsafe is cheaper):
//   node-bench: randomBytes(16) snapsafe=N ns crypto=M ns ratio=R
// Each figure is the best of 5 timed loops. node:crypto's randomUUID serves from a cache
// of 128 UUIDs' bytes (the cache a restored clone would repeat), so it is also measured
// with { disableEntropyCache: true }.
'use strict';
const crypto = require('node:crypto');
const snapsafe = require('..');

const budget = Number(process.argv[2] || 300) * 1e6; // ns per measurement

function perCallNs(fn) {
  let n = 1000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const estimate = Math.max(20, Number(process.hrtime.bigint() - start) / n);
  n = Math.max(1000, Math.floor(budget / 5 / estimate));
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

const pairs = [
  ['randomBytes(16)', () => snapsafe.randomBytes(16), 'crypto.randomBytes', () => crypto.randomBytes(16)],
  ['randomFillSync(16)', ((b) => () => snapsafe.randomFillSync(b))(Buffer.alloc(16)),
    'crypto.randomFillSync', ((b) => () => crypto.randomFillSync(b))(Buffer.alloc(16))],
  ['randomInt(1000)', () => snapsafe.randomInt(1000), 'crypto.randomInt', () => crypto.randomInt(1000)],
  ['randomUUID()', () => snapsafe.randomUUID(), 'crypto.randomUUID', () => crypto.randomUUID()],
  ['randomUUID()', () => snapsafe.randomUUID(), 'crypto.randomUUID[no-cache]',
    () => crypto.randomUUID({ disableEntropyCache: true })],
];
for (const [name, ours, theirsName, theirs] of pairs) {
  const a = perCallNs(ours);
  const b = perCallNs(theirs);
  console.log(`node-bench: ${name} snapsafe=${a.toFixed(0)} ns ${theirsName}=${b.toFixed(0)} ns ratio=${(a / b).toFixed(2)}`);
}
