// Package snapsafe gives Go programs random bytes, integers and UUIDs that stay unique
// across VM and container snapshot restores, fork() and CRIU clones: the shapes of
// crypto/rand (an io.Reader, Read, Int) served by snapsafe's C library (libsnapsafe.so,
// snapsafe.h) through cgo.
//
//	key := make([]byte, 32)
//	if _, err := snapsafe.Read(key); err != nil { ... }   // like crypto/rand.Read
//	id := snapsafe.UUIDv7String()                          // time-ordered UUID text
//
// Building needs the installed library: cgo finds it with pkg-config (set
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for `bazel run //:install -- PREFIX`; the rpath
// pkg-config gives lets the program find libsnapsafe.so at run time).
//
// Nothing is cached on the Go side: every call draws from the library, whose per-thread
// state is reseeded after a fork and after a snapshot restore it detects (Status). Errors
// from the C library (the kernel refusing entropy, say) come back as *Error, which wraps
// the errno (errors.Is(err, syscall.EPERM)); nothing is returned then (fail closed). The
// functions without an error result (UUIDv4, UUIDv7, Uint64, the String forms) panic on
// such a failure, as there is no safe value to return; use the ones with errors (NewUUIDv4,
// NewUUIDv7, Read) where a sandbox may refuse entropy.
package snapsafe

/*
#cgo pkg-config: snapsafe
#include <stdlib.h>
#include "snapsafe.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"syscall"
	"unsafe"
)

// Error is a failure of the C library: Function returned Errno.
type Error struct {
	Function string
	Errno    syscall.Errno
}

func (e *Error) Error() string { return fmt.Sprintf("snapsafe: %s: %v", e.Function, e.Errno) }

// Unwrap gives the errno, for errors.Is(err, syscall.EPERM) and the like.
func (e *Error) Unwrap() error { return e.Errno }

func check(rc C.int, function string) error {
	if rc == 0 {
		return nil
	}
	return &Error{Function: function, Errno: syscall.Errno(rc)}
}

type reader struct{}

// Reader is a cryptographically secure random generator, like crypto/rand.Reader: every
// Read fills the whole buffer or returns an error.
var Reader io.Reader = reader{}

func (reader) Read(b []byte) (int, error) { return Read(b) }

// Read fills b with random bytes. It returns len(b), nil, or 0 and an *Error (b is then
// zeroed).
func Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := check(C.snapsafe_fill(unsafe.Pointer(&b[0]), C.size_t(len(b))), "snapsafe_fill"); err != nil {
		return 0, err
	}
	return len(b), nil
}

// NewUint64 returns a uniformly distributed 64-bit value.
func NewUint64() (uint64, error) {
	var v C.uint64_t
	if err := check(C.snapsafe_u64(&v), "snapsafe_u64"); err != nil {
		return 0, err
	}
	return uint64(v), nil
}

// Uint64 is NewUint64 that panics on a failure of the C library.
func Uint64() uint64 { return must(NewUint64()) }

// Uint64n returns a uniformly distributed value in [0, n) without modulo bias. n must be
// at least 1.
func Uint64n(n uint64) (uint64, error) {
	if n == 0 {
		return 0, errors.New("snapsafe: Uint64n: n must be at least 1")
	}
	var v C.uint64_t
	if err := check(C.snapsafe_uniform(C.uint64_t(n), &v), "snapsafe_uniform"); err != nil {
		return 0, err
	}
	return uint64(v), nil
}

// Int returns a uniform random value in [0, max), like crypto/rand.Int. It returns an
// error (crypto/rand panics) if max <= 0.
func Int(max *big.Int) (*big.Int, error) {
	if max == nil || max.Sign() <= 0 {
		return nil, errors.New("snapsafe: Int: max must be positive")
	}
	if max.IsUint64() {
		v, err := Uint64n(max.Uint64())
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetUint64(v), nil
	}
	// Above 2**64: draw max's bit length and reject values >= max (fewer than half).
	bits := max.BitLen()
	b := make([]byte, (bits+7)/8)
	n := new(big.Int)
	for {
		if _, err := Read(b); err != nil {
			return nil, err
		}
		b[0] &= uint8(int(1<<uint(bits-8*(len(b)-1))) - 1)
		n.SetBytes(b)
		if n.Cmp(max) < 0 {
			return n, nil
		}
	}
}

// UUID is a UUID's 16 bytes in RFC 9562 order.
type UUID [16]byte

// String is the canonical 36-character lower-case text.
func (u UUID) String() string {
	var text [C.SNAPSAFE_UUID_TEXT_SIZE]C.char
	// Cannot fail: both buffers have the sizes the C API asks for.
	C.snapsafe_uuid_format((*C.uint8_t)(unsafe.Pointer(&u[0])), &text[0], C.size_t(len(text)))
	return C.GoStringN(&text[0], C.SNAPSAFE_UUID_TEXT_SIZE-1)
}

// Version is the UUID's version number (4 or 7 here).
func (u UUID) Version() int { return int(u[6] >> 4) }

// NewUUIDv4 returns a random (version 4) UUID.
func NewUUIDv4() (UUID, error) {
	var u UUID
	err := check(C.snapsafe_uuid_v4_bytes((*C.uint8_t)(unsafe.Pointer(&u[0])), 16), "snapsafe_uuid_v4_bytes")
	return u, err
}

// NewUUIDv7 returns a time-ordered (version 7, RFC 9562) UUID: 48-bit Unix milliseconds,
// then random bits; the library keeps the IDs of one OS thread increasing.
func NewUUIDv7() (UUID, error) {
	var u UUID
	err := check(C.snapsafe_uuid_v7_bytes((*C.uint8_t)(unsafe.Pointer(&u[0])), 16), "snapsafe_uuid_v7_bytes")
	return u, err
}

// UUIDv4 is NewUUIDv4 as [16]byte, panicking on a failure of the C library.
func UUIDv4() [16]byte { return must(NewUUIDv4()) }

// UUIDv7 is NewUUIDv7 as [16]byte, panicking on a failure of the C library.
func UUIDv7() [16]byte { return must(NewUUIDv7()) }

// UUIDv4String is a version 4 UUID's text.
func UUIDv4String() string { return UUID(UUIDv4()).String() }

// UUIDv7String is a version 7 UUID's text.
func UUIDv7String() string { return UUID(UUIDv7()).String() }

// Status is the library's multi-line status report: which sources protect this process.
func Status() (string, error) {
	size := C.size_t(4096)
	for attempt := 0; attempt < 8; attempt++ {
		buf := (*C.char)(C.malloc(size))
		if buf == nil {
			return "", &Error{Function: "snapsafe_status", Errno: syscall.ENOMEM}
		}
		var needed C.size_t
		rc := C.snapsafe_status(buf, size, &needed)
		text := C.GoString(buf)
		C.free(unsafe.Pointer(buf))
		if rc == 0 {
			return text, nil
		}
		if syscall.Errno(rc) != syscall.ERANGE {
			return "", check(rc, "snapsafe_status")
		}
		size = needed + 256
	}
	return "", &Error{Function: "snapsafe_status", Errno: syscall.ERANGE}
}

// SourceName is the active generation source's name: "sysgenid-mmap", "kernel",
// "counter-file"...
func SourceName() (string, error) {
	var name [128]C.char
	if err := check(C.snapsafe_source_name(&name[0], C.size_t(len(name))), "snapsafe_source_name"); err != nil {
		return "", err
	}
	return C.GoString(&name[0]), nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
