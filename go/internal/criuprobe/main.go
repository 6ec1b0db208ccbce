// Command criuprobe is a Go process that uses only the snapsafe binding, for CRIU clones
// (tests/bindings/criu_run): criuprobe DIR VALUES.
//
// Draws once from snapsafe and from the control (math/rand seeded once at start: a
// snapshot-unaware generator), writes DIR/ready ("pid PID"), then waits for DIR/go,
// which names the output file, and writes there the lines
//
//	source NAME / snapsafe HEX... / snapsafe-id UUID... / control NUMBER... / end
//
// (VALUES values each) and exits 0.3 s later (see the end of main).
package main

import (
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"snapsafe.dev/snapsafe"
)

func main() {
	dir := os.Args[1]
	values, _ := strconv.Atoi(os.Args[2])
	control := rand.New(rand.NewSource(time.Now().UnixNano()))
	b := make([]byte, 16)
	if _, err := snapsafe.Read(b); err != nil {
		fail(dir, err)
	}
	control.Uint64()
	write(filepath.Join(dir, "ready"), fmt.Sprintf("pid %d\n", os.Getpid()))
	goFile := filepath.Join(dir, "go")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			os.Exit(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	target, err := os.ReadFile(goFile)
	if err != nil {
		os.Exit(1)
	}
	source, _ := snapsafe.SourceName()
	var ours, ids, theirs []string
	for i := 0; i < values; i++ {
		if _, err := snapsafe.Read(b); err != nil {
			fail(dir, err)
		}
		ours = append(ours, hex.EncodeToString(b))
		ids = append(ids, snapsafe.UUIDv4String())
		theirs = append(theirs, strconv.FormatUint(control.Uint64(), 10))
	}
	write(strings.TrimSpace(string(target)), fmt.Sprintf("source %s\nsnapsafe %s\nsnapsafe-id %s\ncontrol %s\nend\n",
		source, strings.Join(ours, " "), strings.Join(ids, " "), strings.Join(theirs, " ")))
	// Stay alive a moment: CRIU detaches the restored threads one by one after resuming
	// them, and fails the restore ("Unable to detach") if the process has exited by then.
	time.Sleep(300 * time.Millisecond)
}

func write(path, text string) {
	if os.WriteFile(path+".tmp", []byte(text), 0o644) != nil || os.Rename(path+".tmp", path) != nil {
		os.Exit(1)
	}
}

func fail(dir string, err error) {
	write(filepath.Join(dir, "ready"), fmt.Sprintf("error %v\n", err))
	os.Exit(1)
}
