// Fuzz target: the shared counter file (genid/counter_file.h) as the library reads it,
// from a file whose bytes are the fuzzer's.
//
// Design: the input is a script (taken from its end by FuzzedDataProvider: up to 8
// operations) and the file's contents (the rest). The contents go to a new file owned by
// the effective user, mode 0644, in a private directory under /tmp (so the trust rules of
// genid/file_trust.h pass and only the bytes decide). An oracle says whether they are a
// counter file (at least 16 bytes, magic "SSGENv1\n") and its generation (bytes 8..15).
//
// 1. In this process (coverage-guided), through the functions the tools call:
//    counter_file_read agrees with the oracle; counter_file_bump succeeds exactly then,
//    returns a fresh generation (not the one it replaced), changes only bytes 8..15 and
//    otherwise leaves the file byte for byte as it was; counter_file_create keeps a valid
//    file as it is and replaces an invalid one (saying why) with one that reads. Errors
//    are one line that starts with the path.
// 2. In a forked child, open_counter_file (the per-draw source) on the same bytes: it
//    opens exactly when the oracle says so and its mapped word holds the generation.
//    Then the script abuses the file while it is mapped: bump it, poke a byte, truncate
//    or extend it (to 0 bytes: the next load faults and the SIGBUS guard must turn the
//    page into a tombstone), chmod it, unlink it, replace it by rename. After each step
//    the mapped word is loaded and still_valid() asked, against a model of the file:
//    still_valid() is true exactly while the file at the path is the mapped one, at
//    least 16 bytes, with its magic, not writable by group or others, and nothing ever
//    made it false before; while true the word is the file's generation, once false it
//    is kGenerationUnknown. The child exists because the library keeps every counter
//    file a process opened mapped (at most 256, by design) and each input uses one of
//    those slots up; one child serves up to 240 slots' worth of inputs, then a fresh
//    one is forked (a failure that needed an earlier input in the same child reproduces
//    only with that input before it). Coverage of the child is not fed back to
//    libFuzzer: the validation it shares with part 1 (map_counter) is.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/common_interface_defs.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/generation.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace genid = snapsafe::genid;
using genid::Generation;
using genid::kGenerationUnknown;

constexpr size_t kMaxContents = 64;

std::string read_all(const std::string& path) {
  std::string bytes;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bytes;
  char chunk[256];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) bytes.append(chunk, static_cast<size_t>(n));
  close(fd);
  return bytes;
}

bool is_counter_file(const std::string& bytes) {
  return bytes.size() >= genid::kCounterFileSize &&
         std::memcmp(bytes.data(), genid::kCounterFileMagic, 8) == 0;
}

Generation generation_of(const std::string& bytes) {
  Generation g = 0;
  std::memcpy(&g, bytes.data() + 8, 8);
  return g;
}

void check_error(const std::string& error, const std::string& path) {
  FUZZ_CHECK(error.rfind(path + ": ", 0) == 0 && error.find('\n') == std::string::npos,
             "error not one line starting with the path: %s", error.c_str());
}

// ---- Part 1: the tool-side functions, in this process.

void check_tool_side(const std::string& path, const std::string& contents) {
  snapsafe::fuzz::write_file(path, contents);
  const bool valid = is_counter_file(contents);
  Generation g = 0;
  std::string error = genid::counter_file_read(path, &g);
  FUZZ_CHECK(error.empty() == valid, "read: valid=%d but error '%s'", valid, error.c_str());
  if (valid) FUZZ_CHECK(g == generation_of(contents), "read: wrong generation");
  if (!valid) check_error(error, path);

  error = genid::counter_file_bump(path, &g);
  FUZZ_CHECK(error.empty() == valid, "bump: valid=%d but error '%s'", valid, error.c_str());
  std::string after = read_all(path);
  std::string want = contents;
  if (valid) {
    // A fresh random generation (not +1), never the one it replaced, never "unknown".
    FUZZ_CHECK(g != generation_of(contents) && g != 0 && g < genid::kGenerationUnknown,
               "bump returned %llu", static_cast<unsigned long long>(g));
    std::memcpy(want.data() + 8, &g, 8);
  } else {
    check_error(error, path);
  }
  FUZZ_CHECK(after == want, "bump changed other bytes (valid=%d, size %zu -> %zu)", valid,
             contents.size(), after.size());

  std::string replaced;
  error = genid::counter_file_create(path, &replaced);
  FUZZ_CHECK(error.empty(), "create failed: %s", error.c_str());
  FUZZ_CHECK(replaced.empty() == valid, "create: valid=%d but replaced '%s'", valid,
             replaced.c_str());
  after = read_all(path);
  if (valid) {
    FUZZ_CHECK(after == want, "create changed a valid file");
  } else {
    FUZZ_CHECK(is_counter_file(after) && after.size() == genid::kCounterFileSize,
               "create left no counter file in place of an invalid one");
  }
  error = genid::counter_file_read(path, &g);
  FUZZ_CHECK(error.empty() && g == generation_of(after), "read after create: %s", error.c_str());
}

// ---- Part 2: the mapped source under abuse, in a child.

enum Op : uint8_t { kBump, kPoke, kTruncate, kChmod, kUnlink, kReplace, kOpenAgain, kOps };

struct Step {
  Op op;
  uint8_t a;
  uint8_t b;
};

// One file as the model sees it.
struct FileModel {
  std::string bytes;  // its contents (size = bytes.size())
  mode_t mode = 0644;
  bool usable() const { return is_counter_file(bytes) && (mode & 022) == 0; }
};

void check_mapped(const std::string& path, const std::string& contents,
                  const std::vector<Step>& steps) {
  genid::counter_file_check_interval_for_testing(0);  // lstat on every still_valid()
  const genid::OpenResult opened = genid::open_counter_file(path);
  const bool valid = is_counter_file(contents);
  FUZZ_CHECK(opened.ok == valid, "open_counter_file ok=%d, oracle %d: %s", opened.ok, valid,
             opened.error.c_str());
  if (!valid) {
    check_error(opened.error, path);
    return;
  }
  const uint64_t* word = opened.source.reader.word;
  bool (*still_valid)() = opened.source.still_valid;
  FUZZ_CHECK(word != nullptr && still_valid != nullptr, "a counter file source without its word");
  FUZZ_CHECK(*word == generation_of(contents), "mapped word is not the generation");
  FUZZ_CHECK(still_valid(), "a fresh source is not valid");

  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);  // the mapped file, whatever the path
  FUZZ_CHECK(fd >= 0, "open for abuse");
  FileModel mapped{contents, 0644};
  FileModel replacement;
  enum { kMapped, kReplacement, kNone } at_path = kMapped;
  bool invalid = false;  // still_valid() said false once (or a fault tombstoned the page)

  for (const Step& step : steps) {
    switch (step.op) {
      case kBump: {
        FileModel* target = at_path == kMapped        ? &mapped
                            : at_path == kReplacement ? &replacement
                                                      : nullptr;
        Generation g = 0;
        const std::string error = genid::counter_file_bump(path, &g);
        const bool want = target != nullptr && target->usable();
        FUZZ_CHECK(error.empty() == want, "bump: want %d, error '%s'", want, error.c_str());
        if (want) {  // a fresh random generation: another than before, never "unknown"
          FUZZ_CHECK(g != generation_of(target->bytes), "bump value: unchanged");
          FUZZ_CHECK(g != 0 && g != genid::kGenerationUnknown, "bump value: out of range");
          std::memcpy(target->bytes.data() + 8, &g, 8);
        }
        break;
      }
      case kPoke: {
        const size_t offset = step.a % 16;
        const char value = static_cast<char>(step.b);
        FUZZ_CHECK(pwrite(fd, &value, 1, static_cast<off_t>(offset)) == 1, "pwrite");
        if (mapped.bytes.size() <= offset) mapped.bytes.resize(offset + 1, '\0');
        mapped.bytes[offset] = value;
        break;
      }
      case kTruncate: {
        const size_t size = step.a % 33;  // 0..32: shorter, exact, longer
        FUZZ_CHECK(ftruncate(fd, static_cast<off_t>(size)) == 0, "ftruncate");
        mapped.bytes.resize(size, '\0');
        break;
      }
      case kChmod: {
        static constexpr mode_t kModes[] = {0644, 0600, 0444, 0664, 0646, 0666, 0640, 0604};
        mapped.mode = kModes[step.a % 8];
        FUZZ_CHECK(fchmod(fd, mapped.mode) == 0, "fchmod");
        break;
      }
      case kUnlink:
        if (at_path != kNone) FUZZ_CHECK(unlink(path.c_str()) == 0, "unlink");
        at_path = kNone;
        break;
      case kReplace: {
        replacement =
            FileModel{std::string(genid::kCounterFileMagic, 8) + std::string(8, '\0'), 0644};
        replacement.bytes[8] = static_cast<char>(step.a);
        const std::string tmp = path + ".new";
        snapsafe::fuzz::write_file(tmp, replacement.bytes);
        FUZZ_CHECK(rename(tmp.c_str(), path.c_str()) == 0, "rename");
        at_path = kReplacement;
        break;
      }
      case kOpenAgain: {
        // The same, still trusted file opened again reuses its mapping and its state.
        const genid::OpenResult again = genid::open_counter_file(path);
        if (at_path == kMapped && !invalid && mapped.usable()) {
          FUZZ_CHECK(again.ok && again.source.still_valid == still_valid &&
                         again.source.reader.word == word,
                     "re-opening the trusted mapped file did not reuse its slot");
        }
        break;
      }
      case kOps: break;
    }
    // The per-draw load first (a truncation to 0 faults here: the guard's tombstone).
    const uint64_t loaded = *word;
    if (invalid || mapped.bytes.empty()) {
      FUZZ_CHECK(loaded == kGenerationUnknown, "load after retirement/truncation: %llx",
                 static_cast<unsigned long long>(loaded));
      invalid = true;
    } else {
      std::string page = mapped.bytes;
      page.resize(16, '\0');  // past the end of the file: zeros within the page
      FUZZ_CHECK(loaded == generation_of(page), "load: %llx, file says %llx",
                 static_cast<unsigned long long>(loaded),
                 static_cast<unsigned long long>(generation_of(page)));
    }
    const bool trusted = !invalid && at_path == kMapped && mapped.usable();
    const bool said = still_valid();
    FUZZ_CHECK(said == trusted, "still_valid()=%d after op %d, model says %d", said, step.op,
               trusted);
    const std::string reason = genid::counter_file_invalid_reason(still_valid);
    FUZZ_CHECK(reason.empty() == said, "invalid reason '%s' but still_valid %d", reason.c_str(),
               said);
    if (!said) {
      invalid = true;
      FUZZ_CHECK(*word == kGenerationUnknown, "a retired source's word is not the tombstone");
    }
  }
  close(fd);
}

// The child that runs part 2: forked once, then fed one input after another through a
// pipe, and replaced before the inputs it ran could use up the library's 256 slots (one per
// input, one more per kOpenAgain). A fork per input would cost ~9 ms; this, ~0.1 ms.
class MappedServer {
 public:
  // Runs part 2 for one input; a child that dies on it is a finding (its report, from the
  // FUZZ_CHECK or the sanitizer, is on stderr above).
  void run(const std::string& path, const std::string& contents, const std::vector<Step>& steps) {
    size_t cost = 1;
    for (const Step& step : steps) cost += step.op == kOpenAgain;
    if (pid_ < 0 || used_ + cost > kSlotBudget) restart();
    used_ += cost;
    std::string request;
    append(&request, path);
    append(&request, contents);
    append(&request,
           std::string(reinterpret_cast<const char*>(steps.data()), steps.size() * sizeof(Step)));
    // libFuzzer's SIGALRM (its -timeout watchdog, every timeout/2 + 1 s) is installed
    // without SA_RESTART: every call below that can block retries on EINTR, or a signal
    // that lands while the child works would read as the child's death.
    char reply = 0;
    const bool sent = write_exactly(to_child_, request.data(), request.size());
    const bool answered = sent && read_exactly(from_child_, &reply, 1) && reply == 'k';
    if (!answered) {
      const int status = wait_for(pid_);
      FUZZ_CHECK(false,
                 "the mapped-source child died on this input (status %#x): its report "
                 "is above",
                 status);
    }
  }

 private:
  static constexpr size_t kSlotBudget = 240;

  static void append(std::string* out, const std::string& field) {
    const uint32_t size = static_cast<uint32_t>(field.size());
    out->append(reinterpret_cast<const char*>(&size), sizeof size);
    out->append(field);
  }

  static bool write_exactly(int fd, const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = write(fd, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  static int wait_for(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  static bool read_exactly(int fd, void* data, size_t size) {
    auto* bytes = static_cast<char*>(data);
    while (size > 0) {
      const ssize_t n = read(fd, bytes, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  static bool read_field(int fd, std::string* field) {
    uint32_t size = 0;
    if (!read_exactly(fd, &size, sizeof size)) return false;
    field->resize(size);
    return read_exactly(fd, field->data(), size);
  }

  // The child: no libFuzzer crash handling of its own (libFuzzer would save the input it
  // was forked under, not the one that failed); a failed check or a sanitizer report
  // ends it, and the parent reports the input it was running.
  [[noreturn]] static void serve(int in, int out) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGABRT, SIG_DFL);
    __sanitizer_set_death_callback(nullptr);
    std::string path, contents, raw_steps;
    while (read_field(in, &path) && read_field(in, &contents) && read_field(in, &raw_steps)) {
      std::vector<Step> steps(raw_steps.size() / sizeof(Step));
      if (!steps.empty()) std::memcpy(steps.data(), raw_steps.data(), steps.size() * sizeof(Step));
      check_mapped(path, contents, steps);
      if (!write_exactly(out, "k", 1)) break;
    }
    _exit(0);
  }

  void restart() {
    signal(SIGPIPE, SIG_IGN);  // a child that died: EPIPE, reported as such, not a kill
    if (pid_ >= 0) {
      close(to_child_);
      close(from_child_);
      const int status = wait_for(pid_);
      FUZZ_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "mapped-source child exit");
    }
    int request[2], reply[2];
    FUZZ_CHECK(pipe2(request, O_CLOEXEC) == 0 && pipe2(reply, O_CLOEXEC) == 0, "pipe");
    pid_ = fork();
    FUZZ_CHECK(pid_ >= 0, "fork");
    if (pid_ == 0) {
      close(request[1]);
      close(reply[0]);
      serve(request[0], reply[1]);
    }
    close(request[0]);
    close(reply[1]);
    to_child_ = request[1];
    from_child_ = reply[0];
    used_ = 0;
  }

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  size_t used_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  std::vector<Step> steps(provider.ConsumeIntegralInRange<size_t>(0, 8));
  for (Step& step : steps) {
    step.op = static_cast<Op>(provider.ConsumeIntegralInRange<uint8_t>(0, kOps - 1));
    step.a = provider.ConsumeIntegral<uint8_t>();
    step.b = provider.ConsumeIntegral<uint8_t>();
  }
  std::string contents = provider.ConsumeRemainingBytesAsString();
  if (contents.size() > kMaxContents) contents.resize(kMaxContents);

  const std::string& dir = snapsafe::fuzz::private_dir();
  check_tool_side(dir + "/tool", contents);
  static MappedServer* server = new MappedServer;
  snapsafe::fuzz::write_file(dir + "/mapped", contents);
  server->run(dir + "/mapped", contents, steps);
  return 0;
}
