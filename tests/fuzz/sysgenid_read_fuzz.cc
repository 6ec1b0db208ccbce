// Fuzz target: SysGenID reads (genid/sysgenid.h, syscall mode): what read() returns to
// the library, and what happens to its descriptor meanwhile.
//
// Design: the seam is the one tests/sysgenid_device_test.cc uses: tests/fake_sysgenid.h
// defines open/read/write/mmap/close/dup2/dup3/ioctl for this binary and models the
// character device (a symlink to /dev/null stands in for the node); its answer_read hook
// lets this target script every read() of the device. The input (FuzzedDataProvider)
// picks the device or the regular-file stand-in, then a script of up to 24 steps:
//   queue an answer for a coming read(): the model's own, 4 bytes of any value, a short
//     read (0..3 bytes), EAGAIN, or an error (EIO, EINTR, EINVAL, ENODEV, EBADF);
//   read the generation (the per-draw reader), acknowledge what it returned (as a draw
//     does after its reseed), bump or set the device's generation;
//   take the library's descriptor number away behind its back (dup2 a pipe holding
//     data, or a regular file, over it; or close it), remove or restore the node.
// Properties, per read of the generation:
//  - every read() the library makes asks for exactly 4 bytes, on the device only: a
//    pipe or file put over its number is never read, written or closed (its bytes, its
//    offset and the number are checked after every step);
//  - the last read() decides the result exactly: 4 bytes give that value; EAGAIN gives
//    the last value the device accepted as an acknowledgement on the current open, or a
//    fresh "value at open" token (> 2^32) when there is none; anything else, and no
//    read at all, gives kGenerationUnknown. So a short read, an error or a stolen
//    descriptor never becomes a generation, and an acknowledgement the device refused
//    is never published;
//  - afterwards the library's descriptor is its device's or none.
// The stand-in: a file of 0..8 bytes opens exactly when it has 4, and reads as its u32
// (rewritten or truncated between reads: the new value, or unknown when short).
// The library keeps one descriptor per process; each input opens it afresh (the previous
// one is closed by the open), and the fake's table of descriptions is reset per input.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "genid/generation.h"
#include "genid/source.h"
#include "genid/sysgenid.h"
#include "tests/fake_sysgenid.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace genid = snapsafe::genid;
namespace fake = snapsafe::testing::fake_sysgenid;
using genid::Generation;
using genid::kGenerationUnknown;

// ---- Scripted answers to the library's read()s.

enum AnswerKind : uint8_t { kModel, kValue, kShort, kEagain, kError, kAnswerKinds };
struct Answer {
  AnswerKind kind;
  uint32_t value;
};
struct ReadSeen {
  size_t size;
  ssize_t result;
  uint32_t value;
  int error;
};

std::deque<Answer> g_answers;
std::vector<ReadSeen> g_reads;  // during one library call
bool g_accepted = false;        // an acknowledgement was accepted on the current open
uint32_t g_last_accepted = 0;
uint32_t g_descriptions_at_accept = 0;

bool answer_read(int, int description, void* buf, size_t size, ssize_t* result) {
  const Answer answer = g_answers.empty() ? Answer{kModel, 0} : g_answers.front();
  if (!g_answers.empty()) g_answers.pop_front();
  FUZZ_CHECK(size == 4, "the library read %zu bytes from the device", size);
  ReadSeen seen{size, -1, 0, 0};
  switch (answer.kind) {
    case kModel: {  // what the device does (fake_sysgenid.h), without blocking
      const uint32_t current = fake::generation();
      if (fake::copy_of(description) != current) {
        seen.result = 4;
        seen.value = current;
      } else {
        seen.error = EAGAIN;
      }
      break;
    }
    case kValue:
      seen.result = 4;
      seen.value = answer.value;
      break;
    case kShort:
      seen.result = answer.value % 4;
      seen.value = answer.value;
      break;
    case kEagain: seen.error = EAGAIN; break;
    case kError:
    case kAnswerKinds: {
      static constexpr int kErrors[] = {EIO, EINTR, EINVAL, ENODEV, EBADF};
      seen.error = kErrors[answer.value % 5];
      break;
    }
  }
  if (seen.result > 0) std::memcpy(buf, &seen.value, static_cast<size_t>(seen.result));
  g_reads.push_back(seen);
  *result = seen.result;
  errno = seen.error;
  return true;
}

void after_accept(int, uint32_t value) {
  g_accepted = true;
  g_last_accepted = value;
  g_descriptions_at_accept = fake::kernel().descriptions.load();
}

// ---- Descriptors put over the library's number.

struct Stolen {
  int number;       // the library's old descriptor number, now ours
  bool pipe;        // a pipe's read end holding 4 bytes, else a regular file at offset 0
  int keep = -1;    // pipe: another read end, to count what is left
  int writer = -1;  // pipe: the write end
  struct stat identity;
};
std::vector<Stolen> g_stolen;

void check_stolen() {
  for (const Stolen& s : g_stolen) {
    struct stat st;
    FUZZ_CHECK(fstat(s.number, &st) == 0 && st.st_dev == s.identity.st_dev &&
                   st.st_ino == s.identity.st_ino,
               "descriptor %d, no longer the library's, was closed or replaced by it", s.number);
    if (s.pipe) {
      int left = 0;
      FUZZ_CHECK(ioctl(s.keep, FIONREAD, &left) == 0 && left == 4,
                 "the library read from a pipe put over its number (%d bytes left)", left);
    } else {
      FUZZ_CHECK(lseek(s.number, 0, SEEK_CUR) == 0 && st.st_size == 8,
                 "the library read or wrote a file put over its number");
    }
  }
}

// Puts a pipe holding 4 bytes, or a regular file, at the library's descriptor number (the
// number may also be free already, closed behind the library's back: then the new
// descriptor simply takes it, as an application's next open() would).
void steal(bool pipe_instead_of_file) {
  const int number = genid::sysgenid_descriptor_for_testing();
  if (number < 0) return;
  for (const Stolen& s : g_stolen) {
    if (s.number == number) return;  // already ours
  }
  Stolen s{number, pipe_instead_of_file, -1, -1, {}};
  int source = -1;
  if (pipe_instead_of_file) {
    int fds[2];
    FUZZ_CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe");
    FUZZ_CHECK(write(fds[1], "SNAP", 4) == 4, "fill pipe");
    source = fds[0];
    s.keep = fcntl(fds[0], F_DUPFD_CLOEXEC, 200);  // never the stolen number
    s.writer = fds[1];
  } else {
    const std::string path = snapsafe::fuzz::private_dir() + "/stolen";
    snapsafe::fuzz::write_file(path, "SNAPSAFE", 8);
    source = open(path.c_str(), O_RDWR | O_CLOEXEC);
    FUZZ_CHECK(source >= 0, "open stolen file");
  }
  if (source != number) {
    FUZZ_CHECK(dup2(source, number) == number, "dup2 over the library's descriptor");
    close(source);
  }
  FUZZ_CHECK(fstat(number, &s.identity) == 0, "fstat");
  g_stolen.push_back(s);
}

void release_stolen() {
  for (const Stolen& s : g_stolen) {
    close(s.number);
    if (s.keep >= 0) close(s.keep);
    if (s.writer >= 0) close(s.writer);
  }
  g_stolen.clear();
}

// ---- Reading the generation.

bool is_token(Generation g) { return g > 0xffffffffull && g != kGenerationUnknown; }

Generation read_and_check(const genid::OpenedSource& source) {
  g_reads.clear();
  const Generation got = source.reader.call();
  FUZZ_CHECK(g_reads.size() <= 2, "%zu reads for one check", g_reads.size());
  if (g_reads.empty()) {
    FUZZ_CHECK(got == kGenerationUnknown, "%" PRIx64 " without any read", got);
  } else {
    const ReadSeen& last = g_reads.back();
    if (last.result == 4) {
      FUZZ_CHECK(got == last.value, "read() gave %u, the reader %" PRIx64, last.value, got);
    } else if (last.result < 0 && last.error == EAGAIN) {
      const bool reopened = fake::kernel().descriptions.load() != g_descriptions_at_accept;
      if (g_accepted && !reopened) {
        FUZZ_CHECK(got == g_last_accepted, "EAGAIN gave %" PRIx64 ", last accepted %u", got,
                   g_last_accepted);
      } else {
        FUZZ_CHECK(is_token(got), "EAGAIN with no acknowledgement gave %" PRIx64, got);
      }
    } else {
      FUZZ_CHECK(got == kGenerationUnknown, "read() returned %zd (errno %d), reader %" PRIx64,
                 last.result, last.error, got);
    }
  }
  const int fd = genid::sysgenid_descriptor_for_testing();
  FUZZ_CHECK(fd < 0 || fake::description(fd) >= 0,
             "the library holds descriptor %d, not its device", fd);
  check_stolen();
  return got;
}

// ---- The device.

enum Action : uint8_t {
  kQueueAnswer,
  kRead,
  kAcknowledge,
  kBump,
  kSetGeneration,
  kStealPipe,
  kStealFile,
  kCloseBehind,
  kNodeGone,
  kNodeBack,
  kActions
};

const std::string& node() {
  static const std::string* path = [] {
    auto* p = new std::string(snapsafe::fuzz::private_dir() + "/sysgenid");
    fake::create_node(*p, 1);
    fake::hooks().answer_read = &answer_read;
    fake::hooks().after_accept = &after_accept;
    return p;
  }();
  return *path;
}

void fuzz_device(FuzzedDataProvider& provider) {
  const std::string& path = node();
  fake::kernel().descriptions.store(0);  // one open per input (the previous one is closed)
  g_answers.clear();
  g_accepted = false;
  fake::set_generation(provider.ConsumeIntegral<uint32_t>());
  // The open's own read() may be scripted too.
  if (provider.ConsumeBool()) {
    g_answers.push_back(
        {static_cast<AnswerKind>(provider.ConsumeIntegralInRange<uint8_t>(0, kAnswerKinds - 1)),
         provider.ConsumeIntegral<uint32_t>()});
  }
  g_reads.clear();
  const genid::OpenResult opened = genid::open_sysgenid_syscall(path);
  // A saturated device is refused at open (genid/sysgenid.h), as far as the library can
  // see it: by its one look at the page, which here goes past the fake (the sanitizer
  // runtime's mmap interceptor wins), else by the value the open's read() returned. So a
  // refusal is allowed, not required, when either showed 4294967295.
  const bool saw_saturated = fake::generation() == genid::kSysgenidSaturated ||
                             (g_reads.size() == 1 && g_reads[0].result == 4 &&
                              g_reads[0].value == genid::kSysgenidSaturated);
  const bool refused_saturated =
      !opened.ok && saw_saturated && opened.error.find("is saturated") != std::string::npos;
  const bool want_open =
      !refused_saturated && g_reads.size() == 1 &&
      (g_reads[0].result == 4 || (g_reads[0].result < 0 && g_reads[0].error == EAGAIN));
  FUZZ_CHECK(opened.ok == want_open, "open ok=%d after read() %zd (errno %d): %s", opened.ok,
             g_reads.empty() ? 0 : g_reads[0].result, g_reads.empty() ? 0 : g_reads[0].error,
             opened.error.c_str());
  if (!opened.ok) {
    FUZZ_CHECK(opened.error.rfind(path + ": ", 0) == 0, "error: %s", opened.error.c_str());
    FUZZ_CHECK(genid::sysgenid_descriptor_for_testing() < 0, "a failed open kept a descriptor");
    return;
  }
  const genid::OpenedSource& source = opened.source;
  FUZZ_CHECK(source.kind == genid::SourceKind::kSysgenidSyscall && source.reader.call &&
                 source.acknowledge,
             "syscall source incomplete");
  Generation last = read_and_check(source);
  const size_t steps = provider.ConsumeIntegralInRange<size_t>(0, 24);
  for (size_t i = 0; i < steps && provider.remaining_bytes() > 0; ++i) {
    switch (static_cast<Action>(provider.ConsumeIntegralInRange<uint8_t>(0, kActions - 1))) {
      case kQueueAnswer:
        g_answers.push_back(
            {static_cast<AnswerKind>(provider.ConsumeIntegralInRange<uint8_t>(0, kAnswerKinds - 1)),
             provider.ConsumeIntegral<uint32_t>()});
        break;
      case kRead: last = read_and_check(source); break;
      case kAcknowledge:
        source.acknowledge(last);
        check_stolen();
        break;
      case kBump: fake::bump(); break;
      case kSetGeneration: fake::set_generation(provider.ConsumeIntegral<uint32_t>()); break;
      case kStealPipe: steal(true); break;
      case kStealFile: steal(false); break;
      case kCloseBehind: {
        const int fd = genid::sysgenid_descriptor_for_testing();
        bool stolen = false;
        for (const Stolen& s : g_stolen) stolen |= s.number == fd;
        if (fd >= 0 && !stolen) close(fd);
        break;
      }
      case kNodeGone: unlink(path.c_str()); break;
      case kNodeBack:
        unlink(path.c_str());
        FUZZ_CHECK(symlink("/dev/null", path.c_str()) == 0, "symlink");
        break;
      case kActions: break;
    }
  }
  read_and_check(source);
  release_stolen();
  unlink(path.c_str());
  FUZZ_CHECK(symlink("/dev/null", path.c_str()) == 0, "symlink");
}

// ---- The regular-file stand-in.

void fuzz_file(FuzzedDataProvider& provider) {
  const std::string path = snapsafe::fuzz::private_dir() + "/sysgenid-file";
  std::string contents =
      provider.ConsumeBytesAsString(provider.ConsumeIntegralInRange<size_t>(0, 8));
  snapsafe::fuzz::write_file(path, contents);
  genid::sysgenid_accept_regular_file_for_testing(true);
  const genid::OpenResult opened = genid::open_sysgenid_syscall(path);
  const bool saturated =  // refused at open (genid/sysgenid.h)
      contents.size() >= 4 && contents.compare(0, 4, std::string(4, '\xff')) == 0;
  FUZZ_CHECK(opened.ok == (contents.size() >= 4 && !saturated), "file of %zu bytes: ok=%d %s",
             contents.size(), opened.ok, opened.error.c_str());
  if (!opened.ok) return;
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);  // the same file, rewritten in place
  FUZZ_CHECK(fd >= 0, "open");
  for (int round = 0; round < 4; ++round) {
    uint32_t want = 0;
    std::memcpy(&want, contents.data(), std::min<size_t>(4, contents.size()));
    const Generation got = opened.source.reader.call();
    FUZZ_CHECK(got == (contents.size() >= 4 ? Generation{want} : kGenerationUnknown),
               "stand-in of %zu bytes read as %" PRIx64, contents.size(), got);
    if (provider.remaining_bytes() == 0) break;
    const size_t size = provider.ConsumeIntegralInRange<size_t>(0, 8);
    contents = provider.ConsumeBytesAsString(size);
    FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, contents.data(), contents.size(), 0) ==
                                            static_cast<ssize_t>(contents.size()),
               "rewrite");
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  if (provider.ConsumeBool()) {
    fuzz_file(provider);
  } else {
    fuzz_device(provider);
  }
  return 0;
}
