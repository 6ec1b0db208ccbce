// A Node process that uses only the snapsafe binding, for CRIU clones
// (tests/bindings/criu_run): node criu_probe.js DIR VALUES.
//
// Draws once from snapsafe and from the control (Math.random: V8's xorshift128+, seeded
// once per isolate, a snapshot-unaware generator), writes DIR/ready ("pid PID"), then
// waits (synchronously: no event-loop activity to checkpoint) for DIR/go, which names
// the output file, and writes there the lines
//   source NAME / snapsafe HEX... / snapsafe-id UUID... / control FLOAT... / end
// (VALUES values each) and exits 0.3 s later (see the end).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const snapsafe = require(path.join(__dirname, '..'));

const [dir, valuesText] = process.argv.slice(2);
const values = Number(valuesText);
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(pause, 0, 0, ms);

snapsafe.randomBytes(16); // the library's per-thread state exists before the dump
Math.random();
fs.writeFileSync(path.join(dir, 'ready.tmp'), `pid ${process.pid}\n`);
fs.renameSync(path.join(dir, 'ready.tmp'), path.join(dir, 'ready'));
const go = path.join(dir, 'go');
const deadline = Date.now() + 600000;
while (!fs.existsSync(go)) {
  if (Date.now() > deadline) process.exit(1);
  sleep(10);
}
const out = fs.readFileSync(go, 'utf8').trim();
const many = (f) => Array.from({ length: values }, f).join(' ');
const text = [
  `source ${snapsafe.sourceName()}`,
  `snapsafe ${many(() => snapsafe.randomBytes(16).toString('hex'))}`,
  `snapsafe-id ${many(() => snapsafe.randomUUID())}`,
  `control ${many(() => String(Math.random()))}`,
  'end',
].join('\n');
fs.writeFileSync(`${out}.tmp`, `${text}\n`);
fs.renameSync(`${out}.tmp`, out);
// Stay alive a moment: CRIU detaches the restored threads one by one after resuming
// them, and fails the restore ("Unable to detach") if the process has exited by then.
sleep(300);
process.exit(0);
