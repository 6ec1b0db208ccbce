#!/usr/bin/env node
// node/build.js: compiles the addon (src/addon.c) into build/snapsafe.node with the
// system C compiler, against the installed snapsafe (pkg-config snapsafe: set
// PKG_CONFIG_PATH to PREFIX/lib/pkgconfig for a non-system prefix; the rpath it gives
// makes the addon find libsnapsafe.so at run time) and the Node-API headers.
//
// No node-gyp: it downloads Node's headers, and only node_api.h and js_native_api.h are
// needed (Node-API is ABI-stable: any version's headers build an addon every Node of that
// Node-API version loads). They are taken from, in order: $NODE_API_HEADERS (a directory
// holding node_api.h), the npm package node-api-headers next to this package or under
// /opt/snapsafe/node-api-headers (scripts/install-bindings-deps installs it there), and
// Node's own include directory (<node prefix>/include/node).
//
//   node build.js                 build/snapsafe.node
//   node build.js --test-helper   also build/test_helper.node (test/helper.c: the tests'
//                                 getrandom(2) blocker)
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function headerDir() {
  const candidates = [
    process.env.NODE_API_HEADERS,
    path.join(__dirname, 'node_modules', 'node-api-headers', 'include'),
    '/opt/snapsafe/node-api-headers/node_modules/node-api-headers/include',
    path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node'),
    '/usr/include/node',
  ].filter(Boolean);
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) {
    throw new Error(`node_api.h not found in ${candidates.join(', ')}: ` +
      'npm install node-api-headers, or set NODE_API_HEADERS');
  }
  return found;
}

function snapsafeFlags() {
  try {
    return execFileSync('pkg-config', ['--cflags', '--libs', 'snapsafe'], { encoding: 'utf8' })
      .trim().split(/\s+/);
  } catch (e) {
    throw new Error('pkg-config snapsafe failed: install snapsafe (bazel run //:install -- ' +
      'PREFIX) and set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig');
  }
}

function compile(source, output, flags) {
  const cc = process.env.CC || 'cc';
  const args = ['-std=gnu11', '-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-Werror',
    '-fvisibility=hidden', `-I${headerDir()}`, source, '-o', output, ...flags];
  execFileSync(cc, args, { stdio: 'inherit' });
}

function main() {
  const out = path.join(__dirname, 'build');
  fs.mkdirSync(out, { recursive: true });
  compile(path.join(__dirname, 'src', 'addon.c'), path.join(out, 'snapsafe.node'),
    snapsafeFlags());
  if (process.argv.includes('--test-helper')) {
    compile(path.join(__dirname, 'test', 'helper.c'), path.join(out, 'test_helper.node'), []);
  }
  console.log(`built ${path.join(out, 'snapsafe.node')} (Node-API headers: ${headerDir()})`);
}

main();
