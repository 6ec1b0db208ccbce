// File: bench/simulated_sources.cc
//
// The simulated SysGenID page and counter file (simulated_sources.h): made on tmpfs,
// activated through the SNAPSAFE_* environment and genid::reinit_for_testing().
#include "bench/simulated_sources.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/bench_util.h"
#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/select.h"
#include "genid/sysgenid.h"
#include "rng/fill.h"

namespace snapsafe::bench {

SimulatedSources* g_sources = nullptr;

SimulatedSources::SimulatedSources() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string parent = access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp");
  std::string templ = parent + "/snapsafe_bench.XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) die("mkdtemp " + templ + ": " + std::strerror(errno));
  dir_ = templ;
  sysgenid_path_ = dir_ + "/sysgenid";
  counter_path_ = dir_ + "/generation";
  const int fd = open(sysgenid_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) die("create " + sysgenid_path_);
  // The writer's side: a separate writable shared mapping of the same file, as the
  // device's backend would change the page the readers map read-only.
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (page == MAP_FAILED) die("mmap " + sysgenid_path_);
  sysgenid_page_ = static_cast<uint32_t*>(page);
  const std::string error = snapsafe::genid::counter_file_create(counter_path_);
  if (!error.empty()) die(error);
}

SimulatedSources::~SimulatedSources() {
  unlink(sysgenid_path_.c_str());
  unlink(counter_path_.c_str());
  rmdir(dir_.c_str());
}

void SimulatedSources::activate(Source source) const {
  switch (source) {
    case Source::kSysgenidMmap:
    case Source::kSysgenidSyscall:
      snapsafe::genid::sysgenid_accept_regular_file_for_testing(true);  // a simulated page
      setenv("SNAPSAFE_SOURCE", "sysgenid", 1);
      setenv("SNAPSAFE_SYSGENID_PATH", sysgenid_path_.c_str(), 1);
      setenv("SNAPSAFE_SYSGENID_MODE", source == Source::kSysgenidMmap ? "mmap" : "syscall", 1);
      break;
    case Source::kCounterFile:
      setenv("SNAPSAFE_SOURCE", "counter-file", 1);
      setenv("SNAPSAFE_COUNTER_FILE", counter_path_.c_str(), 1);
      break;
    case Source::kKernel: setenv("SNAPSAFE_SOURCE", "kernel", 1); break;
  }
  snapsafe::genid::reinit_for_testing();
  const snapsafe::genid::SourceKind want =
      source == Source::kSysgenidMmap      ? snapsafe::genid::SourceKind::kSysgenidMmap
      : source == Source::kSysgenidSyscall ? snapsafe::genid::SourceKind::kSysgenidSyscall
      : source == Source::kCounterFile     ? snapsafe::genid::SourceKind::kCounterFile
                                           : snapsafe::genid::SourceKind::kKernel;
  if (snapsafe::genid::init().active.kind != want) {
    std::string notes;
    for (const std::string& note : snapsafe::genid::init().notes) notes += " " + note;
    die(std::string("could not activate source ") + snapsafe::genid::source_name(want) + ":" +
        notes);
  }
  (void)snapsafe::random_u64();  // reseed this thread's state under the new source
}

}  // namespace snapsafe::bench
