// File: tests/vm/emit.h
//
// emit(): how the VM suite's guest programs (tests/vm/guest.cc, the cloned-kernel agent
// tests/vm/cloned_kernel_agent.cc) print a line for the host to parse.
//
// Why it writes the way it does: in the guest, stdout is the serial port, and several
// processes write to it at once (the clone workload's generators, a watcher, the bump's
// child). Each line is formatted into a buffer first and handed to the kernel in ONE
// write(2), so that lines from different processes never interleave mid-line; stdio is not
// used, whose buffer would be flushed in pieces (and copied into a forked child). A line
// longer than the buffer is cut short, never split in two, so that the host's parsers
// (tests/vm/harness.py, tests/vm/cloned_kernel.py) only ever see whole lines.
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

namespace snapsafe::testing {

// The longest line emit() writes, its newline included; longer ones are cut to fit.
inline constexpr int kMaxEmittedLine = 1023;

// printf-formats one line, adds the newline, and writes it to stdout in one write(2).
// Nothing is written if the formatting fails; a failed or short write is not retried.
inline void emit(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline void emit(const char* format, ...) {
  char line[kMaxEmittedLine + 1];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof line - 1, format, args);
  va_end(args);
  if (n < 0) return;
  if (n > static_cast<int>(sizeof line) - 2) n = sizeof line - 2;
  line[n++] = '\n';
  (void)!write(STDOUT_FILENO, line, n);
}

}  // namespace snapsafe::testing
