// snapsafe for Node: random bytes, integers and UUIDs that stay unique across VM and
// container snapshot restores, fork() and CRIU clones.
//
// The names and argument rules of node:crypto, served by snapsafe's C library through the
// N-API addon in src/addon.c (built by build.js into build/snapsafe.node):
//
//   const snapsafe = require('snapsafe');
//   const key = snapsafe.randomBytes(32);        // like crypto.randomBytes
//   const id = snapsafe.randomUUIDv7();          // time-ordered UUID text
//
// Unlike node:crypto there is no entropy cache (crypto.randomUUID keeps 128 UUIDs' worth
// of bytes in the process, which a restored clone would hand out again): every call
// draws from the library, whose state is reseeded after a fork and after a snapshot
// restore it detects (status()). The callback forms call back on the next tick with
// bytes drawn at call time (no thread pool: a draw costs well under a microsecond).
//
// Errors: bad arguments throw TypeError/RangeError with node:crypto's codes
// (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE); a failure of the C library (the kernel
// refusing entropy, say) throws an Error whose code is the errno name ('EPERM',
// 'ENOSYS'...), with .errno and .function; nothing is returned then (fail closed).
// SNAPSAFE_NODE_ADDON names another addon file to load instead of build/snapsafe.node.
'use strict';
const path = require('node:path');

const addon = require(process.env.SNAPSAFE_NODE_ADDON ||
  path.join(__dirname, 'build', 'snapsafe.node'));

const MAX_SIZE = 2 ** 31 - 1; // node:crypto's limit for one draw

function describe(value) {
  if (value === null || value === undefined) return ` Received ${value}`;
  if (typeof value === 'function') return ' Received function';
  if (typeof value === 'object') return ` Received an instance of ${value.constructor?.name ?? 'Object'}`;
  return ` Received type ${typeof value} (${String(value).slice(0, 25)})`;
}

function typeError(name, expected, value) {
  const error = new TypeError(`The "${name}" argument must be ${expected}.${describe(value)}`);
  error.code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

function rangeError(name, expected, value) {
  const error = new RangeError(`The value of "${name}" is out of range. It must be ${expected}. Received ${value}`);
  error.code = 'ERR_OUT_OF_RANGE';
  return error;
}

function checkNumber(name, value, min, max) {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value);
  if (!Number.isInteger(value)) throw rangeError(name, 'an integer', value);
  if (value < min || value > max) throw rangeError(name, `>= ${min} && <= ${max}`, value);
}

function checkCallback(callback) {
  if (typeof callback !== 'function') throw typeError('callback', 'of type function', callback);
}

function byteLengthOf(buffer) {
  if (ArrayBuffer.isView(buffer) || buffer instanceof ArrayBuffer) return buffer.byteLength;
  throw typeError('buf', 'an instance of ArrayBuffer or ArrayBufferView', buffer);
}

// Calls callback(error, result) on the next tick with the result of draw() (or the error
// it threw).
function later(callback, draw) {
  let result;
  try {
    result = draw();
  } catch (error) {
    process.nextTick(callback, error);
    return;
  }
  process.nextTick(callback, null, result);
}

/** `size` random bytes in a new Buffer; with a callback, callback(err, buf) later. */
function randomBytes(size, callback) {
  checkNumber('size', size, 0, MAX_SIZE);
  if (callback !== undefined) checkCallback(callback);
  const draw = () => addon.fill(Buffer.allocUnsafe(size), 0, size);
  if (callback === undefined) return draw();
  later(callback, draw);
  return undefined;
}

// [offset, size] of buf's bytes to fill, checked as node:crypto checks them; offset and
// size count elements of a TypedArray's element size, as in node:crypto.
function fillRange(buf, offset, size) {
  const length = byteLengthOf(buf);
  const elementSize = buf.BYTES_PER_ELEMENT || 1;
  checkNumber('offset', offset, 0, MAX_SIZE);
  const byteOffset = offset * elementSize;
  if (byteOffset > length) throw rangeError('offset', `<= ${length / elementSize}`, offset);
  const byteSize = size === undefined ? length - byteOffset : (checkNumber('size', size, 0, MAX_SIZE), size * elementSize);
  if (byteOffset + byteSize > length) throw rangeError('size + offset', `<= ${length}`, byteSize + byteOffset);
  return [byteOffset, byteSize];
}

/** Fills buf (or [offset, offset+size) of it) with random bytes; returns buf. */
function randomFillSync(buf, offset = 0, size = undefined) {
  const [byteOffset, byteSize] = fillRange(buf, offset, size);
  return addon.fill(buf, byteOffset, byteSize);
}

/** randomFill(buf[, offset[, size]], callback): fills buf, then callback(err, buf). */
function randomFill(buf, offset, size, callback) {
  if (typeof offset === 'function') [callback, offset, size] = [offset, 0, undefined];
  else if (typeof size === 'function') [callback, size] = [size, undefined];
  checkCallback(callback);
  const [byteOffset, byteSize] = fillRange(buf, offset, size);
  later(callback, () => addon.fill(buf, byteOffset, byteSize));
}

/** randomInt([min, ]max[, callback]): an integer in [min, max), without modulo bias.
 * min and max are safe integers; max - min may be up to 2**53 - 1 (node:crypto: 2**48 - 1). */
function randomInt(min, max, callback) {
  const minGiven = typeof max !== 'undefined' && typeof max !== 'function';
  if (!minGiven) [callback, max, min] = [max, min, 0];
  if (!Number.isSafeInteger(min)) throw typeError('min', 'a safe integer', min);
  if (!Number.isSafeInteger(max)) throw typeError('max', 'a safe integer', max);
  if (max <= min) throw rangeError('max', `greater than the value of "min" (${min})`, max);
  const range = max - min;
  if (!Number.isSafeInteger(range)) throw rangeError('max - min', `<= ${Number.MAX_SAFE_INTEGER}`, range);
  if (callback !== undefined) checkCallback(callback);
  const draw = () => min + addon.uniform(range);
  if (callback === undefined) return draw();
  later(callback, draw);
  return undefined;
}

function checkUUIDOptions(options) {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw typeError('options', 'of type object', options);
  }
}

/** A random (version 4) UUID as text. Options (disableEntropyCache) are accepted and
 * have nothing to change: there is no cache. */
function randomUUID(options) {
  checkUUIDOptions(options);
  return addon.uuidV4();
}

/** A time-ordered (version 7, RFC 9562) UUID as text. */
function randomUUIDv7(options) {
  checkUUIDOptions(options);
  return addon.uuidV7();
}

/** The library's multi-line status report: which sources protect this process. */
function status() {
  return addon.status();
}

/** The active generation source's name: 'sysgenid-mmap', 'kernel', 'counter-file'... */
function sourceName() {
  return addon.sourceName();
}

module.exports = {
  randomBytes, randomFill, randomFillSync, randomInt, randomUUID, randomUUIDv7, status,
  sourceName,
};
