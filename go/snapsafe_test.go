// Tests of snapsafe's Go binding (go test -v ./... with PKG_CONFIG_PATH set to the
// installed snapsafe). Output shapes (lengths, UUID version and variant bits, text
// form), ranges and bias-free Int/Uint64n (a bound where modulo reduction would be 2:1
// biased), bad input returning errors (never a panic or crash), C library errors as
// *Error wrapping the errno (getrandom(2) blocked by a seccomp filter in a child process,
// with the negative control that the filter really blocks), and TestPerCallRatios: the
// cost of a 16-byte draw against crypto/rand, printed as "go-bench: ..." lines.
// Fork: not applicable (a Go program does not fork without exec).
package snapsafe

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const blockEnv = "SNAPSAFE_GO_TEST_BLOCK_GETRANDOM"

// TestMain doubles as the child of TestBlockedGetrandom: with blockEnv=ERRNO:CALL it
// blocks getrandom(2) in every thread, makes CALL and prints its outcome.
func TestMain(m *testing.M) {
	if spec := os.Getenv(blockEnv); spec != "" {
		os.Exit(blockedChild(spec))
	}
	os.Exit(m.Run())
}

func blockedChild(spec string) int {
	parts := strings.SplitN(spec, ":", 2)
	code, _ := strconv.Atoi(parts[0])
	if !blockGetrandom(code) {
		fmt.Println("no seccomp")
		return 0
	}
	var err error
	switch parts[1] {
	case "control":
		var b [16]byte
		_, _, e := syscall.Syscall(318, uintptr(unsafe.Pointer(&b[0])), 16, 0)
		fmt.Printf("errno %d\n", int(e))
		return 0
	case "Read":
		b := bytes.Repeat([]byte{0xAA}, 32)
		var n int
		n, err = Read(b)
		if err != nil && (n != 0 || !bytes.Equal(b, make([]byte, 32))) {
			fmt.Println("output not zeroed")
			return 0
		}
	case "Int":
		_, err = Int(big.NewInt(10))
	case "NewUUIDv4":
		_, err = NewUUIDv4()
	case "NewUUIDv7":
		_, err = NewUUIDv7()
	case "UUIDv4":
		defer func() { fmt.Printf("panic %v\n", recover()) }()
		UUIDv4()
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		fmt.Printf("error %s %d %v\n", e.Function, int(e.Errno), errors.Is(err, syscall.Errno(code)))
	} else {
		fmt.Printf("returned %v\n", err)
	}
	return 0
}

// blockGetrandom installs a seccomp filter on all threads (TSYNC) that makes
// getrandom(2) fail with errno code (x86_64 numbers).
func blockGetrandom(code int) bool {
	type sockFilter struct {
		code   uint16
		jt, jf uint8
		k      uint32
	}
	filter := []sockFilter{
		{0x20, 0, 0, 4}, {0x15, 1, 0, 0xC000003E}, {0x06, 0, 0, 0x7FFF0000},
		{0x20, 0, 0, 0}, {0x15, 0, 1, 318}, {0x06, 0, 0, 0x00050000 | uint32(code)},
		{0x06, 0, 0, 0x7FFF0000},
	}
	prog := struct {
		len    uint16
		filter *sockFilter
	}{uint16(len(filter)), &filter[0]}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 38, 1, 0); e != 0 { // NO_NEW_PRIVS
		return false
	}
	// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
	_, _, e := syscall.RawSyscall(317, 1, 1, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	return e == 0
}

func TestReadLengths(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 32, 1000, 1 << 16} {
		b := make([]byte, n)
		got, err := Read(b)
		if err != nil || got != n {
			t.Fatalf("Read(%d bytes) = %d, %v", n, got, err)
		}
		if n >= 16 && bytes.Equal(b, make([]byte, n)) {
			t.Fatalf("Read(%d bytes) left zeros", n)
		}
	}
	a, b := make([]byte, 16), make([]byte, 16)
	io.ReadFull(Reader, a)
	io.ReadFull(Reader, b)
	if bytes.Equal(a, b) {
		t.Fatal("two draws are equal")
	}
	if n, err := Reader.Read(nil); n != 0 || err != nil {
		t.Fatalf("Reader.Read(nil) = %d, %v", n, err)
	}
}

func TestReaderWorksWhereCryptoRandReaderDoes(t *testing.T) {
	// crypto/rand.Int and Prime take any io.Reader.
	v, err := rand.Int(Reader, big.NewInt(1000))
	if err != nil || v.Sign() < 0 || v.Cmp(big.NewInt(1000)) >= 0 {
		t.Fatalf("rand.Int(snapsafe.Reader) = %v, %v", v, err)
	}
}

var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-([89ab])[0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUIDv4(t *testing.T) {
	seen := map[[16]byte]bool{}
	for i := 0; i < 200; i++ {
		u := UUIDv4()
		if u[6]>>4 != 4 || u[8]>>6 != 2 || UUID(u).Version() != 4 {
			t.Fatalf("not a v4 UUID: %x", u)
		}
		m := uuidText.FindStringSubmatch(UUID(u).String())
		if m == nil || m[1] != "4" || strings.ReplaceAll(UUID(u).String(), "-", "") != hex.EncodeToString(u[:]) {
			t.Fatalf("bad text %q for %x", UUID(u).String(), u)
		}
		seen[u] = true
	}
	if len(seen) != 200 {
		t.Fatal("repeated UUIDs")
	}
	if m := uuidText.FindStringSubmatch(UUIDv4String()); m == nil || m[1] != "4" {
		t.Fatal("UUIDv4String")
	}
}

func TestUUIDv7(t *testing.T) {
	runtime.LockOSThread() // the library keeps one thread's v7 IDs increasing
	defer runtime.UnlockOSThread()
	before := uint64(time.Now().UnixMilli())
	var ids []string
	for i := 0; i < 1000; i++ {
		u, err := NewUUIDv7()
		if err != nil {
			t.Fatal(err)
		}
		if u[6]>>4 != 7 || u[8]>>6 != 2 {
			t.Fatalf("not a v7 UUID: %x", u)
		}
		ms := uint64(u[0])<<40 | uint64(u[1])<<32 | uint64(u[2])<<24 | uint64(u[3])<<16 | uint64(u[4])<<8 | uint64(u[5])
		if after := uint64(time.Now().UnixMilli()); ms < before || ms > after {
			t.Fatalf("timestamp %d outside [%d, %d]", ms, before, after)
		}
		ids = append(ids, u.String())
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("v7 UUIDs of one thread are not increasing")
	}
	if m := uuidText.FindStringSubmatch(UUIDv7String()); m == nil || m[1] != "7" {
		t.Fatal("UUIDv7String")
	}
}

func TestIntRanges(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	bounds := []*big.Int{big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(1000),
		new(big.Int).SetUint64(1<<63 + 1), new(big.Int).Sub(two64, big.NewInt(1)), two64,
		new(big.Int).Add(two64, big.NewInt(1)), new(big.Int).Lsh(big.NewInt(12345), 190)}
	for _, max := range bounds {
		for i := 0; i < 200; i++ {
			v, err := Int(max)
			if err != nil || v.Sign() < 0 || v.Cmp(max) >= 0 {
				t.Fatalf("Int(%v) = %v, %v", max, v, err)
			}
		}
	}
	seen := map[int64]bool{}
	for i := 0; i < 300; i++ {
		v, _ := Int(big.NewInt(3))
		seen[v.Int64()] = true
	}
	if len(seen) != 3 {
		t.Fatalf("Int(3) gave only %v", seen)
	}
}

func TestNoModuloBias(t *testing.T) {
	// n = 2**63 + 2**62: u64 % n would put 2/3 of draws below n/2; uniform, half.
	n := uint64(1<<63 + 1<<62)
	below := 0
	for i := 0; i < 4000; i++ {
		v, err := Uint64n(n)
		if err != nil || v >= n {
			t.Fatalf("Uint64n = %d, %v", v, err)
		}
		if v < n/2 {
			below++
		}
	}
	if f := float64(below) / 4000; f < 0.45 || f > 0.55 {
		t.Fatalf("%.3f of draws below n/2", f)
	}
	// The same above 2**64 (the rejection path of Int): n = 2**100 + 2**99.
	big100 := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 100), new(big.Int).Lsh(big.NewInt(1), 99))
	half := new(big.Int).Rsh(big100, 1)
	below = 0
	for i := 0; i < 4000; i++ {
		v, _ := Int(big100)
		if v.Cmp(half) < 0 {
			below++
		}
	}
	if f := float64(below) / 4000; f < 0.45 || f > 0.55 {
		t.Fatalf("Int: %.3f of draws below n/2", f)
	}
}

func TestBadInputIsAnError(t *testing.T) {
	for _, max := range []*big.Int{nil, big.NewInt(0), big.NewInt(-5)} {
		if v, err := Int(max); err == nil || v != nil {
			t.Fatalf("Int(%v) = %v, %v; want an error", max, v, err)
		}
	}
	if _, err := Uint64n(0); err == nil {
		t.Fatal("Uint64n(0) gave no error")
	}
	_ = Uint64()
}

func TestStatus(t *testing.T) {
	s, err := Status()
	if err != nil || strings.TrimSpace(s) == "" {
		t.Fatalf("Status() = %q, %v", s, err)
	}
	name, err := SourceName()
	if err != nil || !regexp.MustCompile(`^[a-z0-9-]+$`).MatchString(name) {
		t.Fatalf("SourceName() = %q, %v", name, err)
	}
}

func TestErrorWrapsErrno(t *testing.T) {
	err := check(1, "snapsafe_fill")
	var e *Error
	if !errors.As(err, &e) || e.Function != "snapsafe_fill" || !errors.Is(err, syscall.EPERM) {
		t.Fatalf("check(EPERM) = %#v", err)
	}
	if check(0, "x") != nil {
		t.Fatal("check(0) is an error")
	}
}

func runBlocked(t *testing.T, code syscall.Errno, call string) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", blockEnv, int(code), call))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", call, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestBlockedGetrandom(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the filter has x86_64 numbers")
	}
	control := runBlocked(t, syscall.EPERM, "control")
	if control == "no seccomp" {
		t.Skip("seccomp filters are not available here")
	}
	if control != fmt.Sprintf("errno %d", int(syscall.EPERM)) {
		t.Fatalf("negative control: the filter did not block getrandom: %q", control)
	}
	for _, code := range []syscall.Errno{syscall.EPERM, syscall.ENOSYS} {
		for _, call := range []string{"Read", "Int", "NewUUIDv4", "NewUUIDv7"} {
			out := runBlocked(t, code, call)
			if !regexp.MustCompile(fmt.Sprintf(`^error snapsafe_\w+ %d true$`, int(code))).MatchString(out) {
				t.Errorf("%s with getrandom failing %v: %q", call, code, out)
			}
		}
		if out := runBlocked(t, code, "UUIDv4"); !strings.HasPrefix(out, "panic snapsafe: snapsafe_uuid_v4_bytes") {
			t.Errorf("UUIDv4 with getrandom failing: %q", out)
		}
	}
}

// TestPerCallRatios prints the cost of 16-byte draws against crypto/rand.Read and of a
// v4 UUID, as "go-bench:" lines (go test -v shows them). No threshold: the machine may
// be shared; the suite records the numbers.
func TestPerCallRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b16 := make([]byte, 16)
	pairs := []struct {
		name, other  string
		ours, theirs func()
	}{
		{"Read(16)", "crypto/rand.Read", func() { Read(b16) }, func() { rand.Read(b16) }},
		{"UUIDv4", "crypto/rand.Read(16)+bits", func() { _ = UUIDv4() }, func() {
			var u [16]byte
			rand.Read(u[:])
			u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
		}},
	}
	for _, p := range pairs {
		a, b := bestNs(p.ours), bestNs(p.theirs)
		fmt.Printf("go-bench: %s snapsafe=%.0f ns %s=%.0f ns ratio=%.2f\n", p.name, a, p.other, b, a/b)
	}
}

// bestNs is the best of 5 timed loops of about 40 ms each, per call of f.
func bestNs(f func()) float64 {
	start := time.Now()
	for i := 0; i < 1000; i++ {
		f()
	}
	n := int(40*time.Millisecond/(time.Since(start)/1000+1)) + 1000
	best := 0.0
	for r := 0; r < 5; r++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		if ns := float64(time.Since(t0).Nanoseconds()) / float64(n); best == 0 || ns < best {
			best = ns
		}
	}
	return best
}

func BenchmarkRead16(b *testing.B) {
	buf := make([]byte, 16)
	for i := 0; i < b.N; i++ {
		Read(buf)
	}
}

func BenchmarkCryptoRandRead16(b *testing.B) {
	buf := make([]byte, 16)
	for i := 0; i < b.N; i++ {
		rand.Read(buf)
	}
}
