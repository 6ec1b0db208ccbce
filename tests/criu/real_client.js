#!/usr/bin/node
// tests/criu/real_client.js: a real node process for tests/criu/run's real-clients part.
// It knows nothing of snapsafe: crypto.randomBytes and crypto.randomUUID go through
// node's OpenSSL, which the shipped provider/openssl-snapsafe.cnf (OPENSSL_CONF, read by
// node through its `nodejs_conf` section) routes to the snapsafe provider.
//
//   real_client.js DIR [VALUES]
//
// The handshake of tests/criu/clone_probe.cc: warm-up draws (so node's and OpenSSL's
// states, node's randomUUID cache included, are in the image), DIR/ready ("pid N"), then
// polls DIR/go every 2 ms; the first line of DIR/go is the output path, written via
// PATH.tmp and rename (after CRIU let go of every thread: see untraced()). Output lines,
// VALUES tokens each:
//   randombytes ...     crypto.randomBytes(16), hex
//   uuid-nocache ...    crypto.randomUUID({ disableEntropyCache: true })
//   uuid ...            crypto.randomUUID(): node draws its entropy ahead in a cache, which a
//                       restore replays (reported, not required to differ)
//   provider loaded|absent   whether snapsafe.so is mapped into the process
//   end
// Only synchronous calls: no libuv thread pool, nothing in flight at the checkpoint.
'use strict';
const crypto = require('crypto');
const fs = require('fs');

const dir = process.argv[2];
const values = Number(process.argv[3] || 5);
const kPollMillis = 2;
const kMaxPolls = 30000;  // ~60 s of polls (counted: a restored copy's clock moved on)

function writeAtomically(path, text) {
  fs.writeFileSync(path + '.tmp', text);
  fs.renameSync(path + '.tmp', path);
}

function tokens(draw) {
  const out = [];
  for (let i = 0; i < values; i++) out.push(draw());
  return out.join(' ');
}

function providerLine() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  return 'provider ' + (maps.includes('/snapsafe.so') ? 'loaded' : 'absent');
}

function draws() {
  return 'randombytes ' + tokens(() => crypto.randomBytes(16).toString('hex')) + '\n' +
    'uuid-nocache ' + tokens(() => crypto.randomUUID({ disableEntropyCache: true })) + '\n' +
    'uuid ' + tokens(() => crypto.randomUUID()) + '\n';
}

try {
  draws();  // warm-up
  writeAtomically(dir + '/ready', 'pid ' + process.pid + '\n');
} catch (e) {
  writeAtomically(dir + '/ready', 'error warm-up: ' + e.message + '\n');
  process.exit(1);
}

// The checkpoint is taken somewhere in this wait.
const sleeper = new Int32Array(new SharedArrayBuffer(4));
let outPath = '';
for (let polls = 0; outPath === ''; polls++) {
  if (polls >= kMaxPolls) process.exit(3);
  try {
    outPath = fs.readFileSync(dir + '/go', 'utf8').split('\n')[0];
  } catch (e) {
    Atomics.wait(sleeper, 0, 0, kPollMillis);
  }
}

// CRIU resumes the threads one by one and lets go of (ptrace-detaches) the others after
// this one runs: a process that exits meanwhile makes the restore fail ("Unable to detach
// TID: No such process", seen in 1 of 20 restores). So first wait until no thread of this
// process is traced any more.
function untraced() {
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let status;
    try {
      status = fs.readFileSync('/proc/self/task/' + tid + '/status', 'utf8');
    } catch (e) {
      continue;  // the thread is gone
    }
    const match = /^TracerPid:\s*(\d+)/m.exec(status);
    if (match && match[1] !== '0') return false;
  }
  return true;
}
for (let polls = 0; !untraced(); polls++) {
  if (polls >= kMaxPolls) process.exit(3);
  Atomics.wait(sleeper, 0, 0, kPollMillis);
}

let text;
try {
  text = draws() + providerLine() + '\n';
} catch (e) {
  text = 'error draw: ' + e.message + '\n';
}
writeAtomically(outPath, text + 'end\n');
