// Tests of snapsafe's Node binding (node --test test/snapsafe.test.js; build first: node build.js
// --test-helper). Output shapes (lengths, ranges, UUID version and variant bits), a
// bias-free randomInt (a range where modulo reduction would be 2:1 biased), bad input
// throwing node:crypto's TypeError/RangeError codes and never crashing, the callback
// forms, C library errors mapped to Error with the errno name (getrandom(2) blocked by a
// seccomp filter in a child process, with the negative control that the filter really
// blocks), and fork-free clones of the process: child_process children draw differently.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');

const snapsafe = require('..');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-([0-9a-f])[0-9a-f]{3}-[0-9a-f]{12}$/;

test('randomBytes: lengths and freshness', () => {
  for (const n of [0, 1, 15, 16, 17, 32, 1000, 65536]) {
    const b = snapsafe.randomBytes(n);
    assert.ok(Buffer.isBuffer(b));
    assert.equal(b.length, n);
  }
  assert.notDeepEqual(snapsafe.randomBytes(16), snapsafe.randomBytes(16));
  // Small Buffers share a pool slab: only our slice is written, and it is not all zero.
  const many = Array.from({ length: 64 }, () => snapsafe.randomBytes(16).toString('hex'));
  assert.equal(new Set(many).size, many.length);
});

test('randomBytes: bad size throws like node:crypto', () => {
  for (const bad of ['16', null, {}, 16n]) {
    assert.throws(() => snapsafe.randomBytes(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  }
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 31]) {
    assert.throws(() => snapsafe.randomBytes(bad), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  }
  assert.throws(() => snapsafe.randomBytes(4, 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('randomBytes with a callback', async () => {
  const b = await new Promise((resolve, reject) =>
    snapsafe.randomBytes(24, (err, buf) => (err ? reject(err) : resolve(buf))));
  assert.equal(b.length, 24);
});

test('randomFillSync and randomFill: ranges of typed arrays, DataView, ArrayBuffer', async () => {
  const b = Buffer.alloc(32);
  assert.equal(snapsafe.randomFillSync(b, 8, 8), b);
  assert.ok(b.subarray(0, 8).equals(Buffer.alloc(8)));
  assert.ok(!b.subarray(8, 16).equals(Buffer.alloc(8)));
  assert.ok(b.subarray(16).equals(Buffer.alloc(16)));
  const u32 = new Uint32Array(8);
  snapsafe.randomFillSync(u32, 2, 3); // elements, as node:crypto counts them
  assert.deepEqual([...u32.slice(0, 2), ...u32.slice(5)], [0, 0, 0, 0, 0]);
  assert.ok(u32.slice(2, 5).some((x) => x !== 0));
  const ab = new ArrayBuffer(16);
  snapsafe.randomFillSync(ab);
  assert.ok(new Uint8Array(ab).some((x) => x !== 0));
  const dv = new DataView(new ArrayBuffer(16), 4, 8);
  snapsafe.randomFillSync(dv);
  assert.deepEqual([...new Uint8Array(dv.buffer, 0, 4)], [0, 0, 0, 0]);
  const big = new BigUint64Array(2);
  snapsafe.randomFillSync(big);
  assert.ok(big[0] !== 0n || big[1] !== 0n);
  const filled = await new Promise((resolve, reject) =>
    snapsafe.randomFill(Buffer.alloc(16), 4, (err, buf) => (err ? reject(err) : resolve(buf))));
  assert.ok(filled.subarray(0, 4).equals(Buffer.alloc(4)));
});

test('randomFill: bad input throws, never crashes', () => {
  assert.throws(() => snapsafe.randomFillSync('text'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => snapsafe.randomFillSync([1, 2, 3]), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => snapsafe.randomFillSync(Buffer.alloc(4), 5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => snapsafe.randomFillSync(Buffer.alloc(4), 2, 3), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => snapsafe.randomFillSync(Buffer.alloc(4), -1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => snapsafe.randomFillSync(Buffer.alloc(4), 0, 1.5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => snapsafe.randomFill(Buffer.alloc(4)), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('randomInt: ranges, bounds and no modulo bias', () => {
  for (const [min, max] of [[0, 1], [0, 2], [0, 3], [-10, 10], [5, 6], [0, 2 ** 32 + 1],
    [-(2 ** 52), 2 ** 52 - 1], [0, Number.MAX_SAFE_INTEGER]]) {
    for (let i = 0; i < 200; i++) {
      const v = snapsafe.randomInt(min, max);
      assert.ok(Number.isSafeInteger(v) && v >= min && v < max, `${min} ${max} ${v}`);
    }
  }
  assert.equal(snapsafe.randomInt(1), 0);
  const seen = new Set(Array.from({ length: 300 }, () => snapsafe.randomInt(3)));
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
  // range = 3 * 2**51: a draw of 53 bits mod range would land below range/2 2/3 of the
  // time; uniform draws land there half the time (4000 draws: sd ~0.008).
  const range = 3 * 2 ** 51;
  let below = 0;
  for (let i = 0; i < 4000; i++) below += snapsafe.randomInt(range) < range / 2 ? 1 : 0;
  assert.ok(Math.abs(below / 4000 - 0.5) < 0.05, String(below));
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 12000; i++) counts[snapsafe.randomInt(6)]++;
  const chi2 = counts.reduce((s, c) => s + (c - 2000) ** 2 / 2000, 0);
  assert.ok(chi2 < 30, String(counts));
});

test('randomInt: bad input throws like node:crypto', () => {
  for (const args of [['1'], [1.5], [0, 1.5], [NaN], [2 ** 53], [0, '9'], [null]]) {
    assert.throws(() => snapsafe.randomInt(...args), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, String(args));
  }
  for (const args of [[0], [-1], [5, 5], [5, 4], [-(2 ** 52), 2 ** 52 + 1]]) {
    assert.throws(() => snapsafe.randomInt(...args), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, String(args));
  }
  assert.throws(() => snapsafe.randomInt(1, 2, 3), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('randomInt with a callback', async () => {
  const v = await new Promise((resolve, reject) =>
    snapsafe.randomInt(10, 20, (err, n) => (err ? reject(err) : resolve(n))));
  assert.ok(v >= 10 && v < 20);
  const w = await new Promise((resolve) => snapsafe.randomInt(3, (err, n) => resolve(n)));
  assert.ok(w >= 0 && w < 3);
});

test('randomUUID (v4) and randomUUIDv7: version and variant bits', () => {
  const before = Date.now();
  const v7 = Array.from({ length: 1000 }, () => snapsafe.randomUUIDv7());
  const after = Date.now();
  for (const id of v7) {
    const m = UUID.exec(id);
    assert.ok(m, id);
    assert.equal(m[1], '7');
    assert.ok('89ab'.includes(m[2]), id);
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    assert.ok(ms >= before && ms <= after, `${before} ${id} ${after}`);
  }
  assert.deepEqual([...v7].sort(), v7); // one thread: increasing
  assert.equal(new Set(v7).size, v7.length);
  for (let i = 0; i < 200; i++) {
    const m = UUID.exec(snapsafe.randomUUID());
    assert.ok(m);
    assert.equal(m[1], '4');
    assert.ok('89ab'.includes(m[2]));
  }
  assert.notEqual(snapsafe.randomUUID(), snapsafe.randomUUID());
  assert.ok(UUID.test(snapsafe.randomUUID({ disableEntropyCache: true })));
  assert.throws(() => snapsafe.randomUUID('x'), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('status and sourceName', () => {
  assert.ok(snapsafe.status().trim().length > 0);
  assert.match(snapsafe.sourceName(), /^[a-z0-9-]+$/);
});

test('the addon checks its own arguments too (never a crash)', () => {
  const addon = require('../build/snapsafe.node');
  assert.throws(() => addon.fill(), { code: 'ERR_MISSING_ARGS' });
  assert.throws(() => addon.fill({}, 0, 1), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => addon.fill(Buffer.alloc(4), 3, 2), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => addon.fill(Buffer.alloc(4), -1, 1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => addon.uniform(0), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }); // EINVAL from the C API
  assert.throws(() => addon.uniform('3'), { code: 'ERR_INVALID_ARG_TYPE' });
});

// Runs `code` in a fresh node after blocking getrandom(2) with `errno`; returns its stdout.
function blocked(errno, code) {
  const helper = path.join(__dirname, '..', 'build', 'test_helper.node');
  const script = `const h = require(${JSON.stringify(helper)});
    if (!h.blockGetrandom(${errno})) { console.log('no seccomp'); process.exit(0); }
    ${code}`;
  const done = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(done.status, 0, done.stderr);
  return done.stdout.trim();
}

test('C library errors: getrandom(2) blocked -> Error with the errno name, no output',
  { skip: os.arch() !== 'x64' && 'the filter has x86_64 numbers' }, () => {
    // Negative control: the filter really blocks getrandom in that process.
    const control = blocked(os.constants.errno.EPERM, 'console.log(h.getrandomErrno());');
    if (control === 'no seccomp') return;
    assert.equal(control, String(os.constants.errno.EPERM));
    for (const [name, errno] of [['EPERM', os.constants.errno.EPERM], ['ENOSYS', os.constants.errno.ENOSYS]]) {
      for (const call of ['randomBytes(16)', 'randomUUID()', 'randomUUIDv7()', 'randomInt(10)',
        'randomFillSync(Buffer.alloc(8))']) {
        const out = blocked(errno, `const s = require(${JSON.stringify(path.join(__dirname, '..'))});
          try { const r = s.${call}; console.log('returned ' + r); }
          catch (e) { console.log([e.constructor.name, e.code, e.errno, e.function].join(' ')); }`);
        assert.match(out, new RegExp(`^Error ${name} ${errno} snapsafe_\\w+$`), `${call}: ${out}`);
      }
    }
  });

test('children started from this process draw their own values', () => {
  const script = `const s = require(${JSON.stringify(path.join(__dirname, '..'))});
    console.log(s.randomBytes(16).toString('hex'), s.randomUUID());`;
  const outs = Array.from({ length: 4 }, () =>
    spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' }).stdout.trim());
  const tokens = outs.join(' ').split(' ');
  assert.equal(tokens.length, 8);
  assert.equal(new Set(tokens).size, 8);
});
