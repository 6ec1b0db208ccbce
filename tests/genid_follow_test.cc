// `snapsafe genid follow` (tools/genid_follow.h) below the command: the uevent parser
// (tools/uevent.h) on well-formed, malformed and arbitrary bytes; the sender check; the
// options; and the follower itself, one step() at a time, driven by a simulated VMClock
// page (a regular file with the real layout), an injected datagram socket carrying uevent
// payloads, and the fake SysGenID device (tests/fake_sysgenid.h). Each guard has its case:
// an unchanged source must not bump, a changed one must; a uevent that is not vmgenid's or
// not the kernel's must not; SysGenID is acknowledged only after the counter file moved,
// and not at all while the bump fails. The whole-machine run (a real netlink socket in a
// network namespace, a non-root process that reseeds) is tests/follow/run.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/random.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "genid/counter_file.h"
#include "genid/counter_file_writer.h"
#include "genid/vmclock.h"
#include "tests/fake_sysgenid.h"
#include "tests/test_util.h"
#include "tools/genid_follow.h"
#include "tools/kernel_reseed.h"
#include "tools/uevent.h"

namespace snapsafe {
namespace {

namespace fake = testing::fake_sysgenid;
using tools::Follower;
using tools::FollowOptions;
using tools::parse_uevent;
using tools::Uevent;

// ---- The uevent parser ----

Uevent parse(const std::string& text) {
  return parse_uevent(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

// A string literal with its embedded NULs (all but the literal's own terminator).
template <size_t N>
std::string lit(const char (&text)[N]) {
  return std::string(text, N - 1);
}

const std::string kVmgenidChange =
    lit("change@/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00\0ACTION=change\0"
        "DEVPATH=/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00\0SUBSYSTEM=acpi\0"
        "NEW_VMGENID=1\0SEQNUM=1234\0");

TEST(Uevent, TheKernelsVmgenidChange) {
  ASSERT_EQ(kVmgenidChange.back(), '\0');
  const Uevent event = parse(kVmgenidChange);
  EXPECT_TRUE(event.ok) << event.error;
  EXPECT_TRUE(event.new_vmgenid);
  EXPECT_EQ(event.action, "change");
  EXPECT_EQ(event.devpath, "/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00");
  // The last field without its NUL, and empty fields between: still the same event.
  EXPECT_TRUE(parse(kVmgenidChange.substr(0, kVmgenidChange.size() - 1)).new_vmgenid);
  EXPECT_TRUE(parse(lit("change@/x\0\0NEW_VMGENID=1")).new_vmgenid);
}

TEST(Uevent, OtherEventsAreNoVmgenidChange) {
  for (const std::string& text : {
           lit("add@/x\0ACTION=add\0NEW_VMGENID=1\0"),  // not a change
           lit("change@/x\0NEW_VMGENID=0\0"),           // another value
           lit("change@/x\0NEW_VMGENID=10\0"),
           lit("change@/x\0XNEW_VMGENID=1\0"),  // another key
           lit("change@/x\0SUBSYSTEM=acpi\0"),  // no field
           lit("change@/NEW_VMGENID=1\0"),      // in the header
       }) {
    const Uevent event = parse(text);
    EXPECT_TRUE(event.ok) << event.error;
    EXPECT_FALSE(event.new_vmgenid) << text;
  }
}

TEST(Uevent, MalformedMessagesAreErrors) {
  EXPECT_EQ(parse("").error, "empty message");
  EXPECT_EQ(parse_uevent(nullptr, 5).error, "empty message");
  EXPECT_EQ(parse(lit("change/x\0NEW_VMGENID=1\0")).error, "no ACTION@DEVPATH header");
  EXPECT_EQ(parse(lit("@/x\0NEW_VMGENID=1\0")).error, "empty action in the header");
  EXPECT_EQ(parse(lit("change@/x\0NEW_VMGENID\0")).error, "a field that is not KEY=VALUE");
  EXPECT_EQ(parse(lit("change@/x\0=1\0")).error, "a field that is not KEY=VALUE");
  EXPECT_EQ(parse(lit("change@/x\0ACTION=add\0NEW_VMGENID=1\0")).error,
            "ACTION= differs from the header's action");
  EXPECT_EQ(parse(lit("libudev\0\xfe\xed\xca\xfe")).error, "a udev message, not the kernel's");
  std::string huge = "change@/x";
  huge.push_back('\0');
  huge += "NEW_VMGENID=1";
  huge.resize(tools::kMaxUeventSize + 1, 'a');
  EXPECT_EQ(parse(huge).error, "message longer than 8192 bytes");
  for (const std::string& text : {lit("change@/x\0NEW_VMGENID\0"), huge}) {
    EXPECT_FALSE(parse(text).ok);
    EXPECT_FALSE(parse(text).new_vmgenid);
  }
}

TEST(Uevent, ArbitraryBytesNeverReadOutside) {
  // Every prefix of the real message in a buffer of exactly its size (ASan: any read
  // past the end is reported), then random messages over the same alphabet.
  for (size_t size = 0; size <= kVmgenidChange.size(); ++size) {
    std::vector<unsigned char> exact(kVmgenidChange.begin(), kVmgenidChange.begin() + size);
    parse_uevent(exact.data(), exact.size());
  }
  std::mt19937 random(23);
  const char alphabet[] = {'\0', '@', '=', 'c', 'N', '1', '/', 'A'};
  for (int round = 0; round < 20000; ++round) {
    std::vector<unsigned char> bytes(random() % 64);
    for (auto& b : bytes) b = static_cast<unsigned char>(alphabet[random() % sizeof alphabet]);
    const Uevent event = parse_uevent(bytes.data(), bytes.size());
    if (!event.ok) {
      EXPECT_FALSE(event.error.empty());
    }
  }
}

TEST(Uevent, OnlyTheKernelSends) {
  EXPECT_TRUE(tools::accept_uevent_sender(AF_NETLINK, 0, false));
  EXPECT_FALSE(tools::accept_uevent_sender(AF_NETLINK, 4242, false));  // a process
  EXPECT_FALSE(tools::accept_uevent_sender(AF_UNIX, 0, false));
  EXPECT_FALSE(tools::accept_uevent_sender(AF_UNSPEC, 0, false));
  EXPECT_TRUE(tools::accept_uevent_sender(AF_NETLINK, 4242, true));  // --test-sources
}

// ---- Options ----

FollowOptions options_of(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"snapsafe", "genid", "follow"};
  args.insert(args.end(), extra.begin(), extra.end());
  const cli::Invocation invocation = cli::parse_invocation(args);
  EXPECT_EQ(invocation.command, "genid follow");
  return tools::follow_options(invocation.parsed, "/run/snapsafe/generation", "/dev/sysgenid");
}

std::string usage_error(const std::vector<std::string>& extra) {
  try {
    options_of(extra);
  } catch (const cli::UsageError& e) {
    return e.message;
  }
  return "";
}

TEST(FollowOptions, DefaultsAndChoices) {
  const FollowOptions defaults = options_of({});
  EXPECT_EQ(defaults.counter_file, "/run/snapsafe/generation");
  EXPECT_EQ(defaults.vmclock_path, "/dev/vmclock0");
  EXPECT_EQ(defaults.sysgenid_path, "/dev/sysgenid");
  EXPECT_TRUE(defaults.vmclock && defaults.uevent && defaults.sysgenid);
  EXPECT_FALSE(defaults.sources_named || defaults.reseed_kernel || defaults.once ||
               defaults.test_sources);
  EXPECT_EQ(defaults.interval_ms, tools::kDefaultFollowIntervalMs);
  const FollowOptions named = options_of({"--sources", "uevent,vmclock", "--file=/run/g",
                                          "--interval-ms", "60000", "--reseed-kernel", "--once"});
  EXPECT_TRUE(named.sources_named && named.vmclock && named.uevent && !named.sysgenid);
  EXPECT_EQ(named.counter_file, "/run/g");
  EXPECT_EQ(named.interval_ms, 60000u);
  EXPECT_TRUE(named.reseed_kernel && named.once);
}

TEST(FollowOptions, BadOnesAreUsageErrors) {
  EXPECT_EQ(usage_error({"--sources", "vmclock,bogus"}),
            "unknown source 'bogus' in --sources (vmclock, uevent, sysgenid)");
  EXPECT_EQ(usage_error({"--sources", ""}), "--sources needs at least one source");
  EXPECT_EQ(usage_error({"--sources", "vm\x1b[2Jclock"}),
            "unknown source 'vm\\x1b[2Jclock' in --sources (vmclock, uevent, sysgenid)");
  EXPECT_EQ(usage_error({"--interval-ms", "0"}), "--interval-ms must be at least 1");
  EXPECT_NE(usage_error({"--interval-ms", "60001"}), "");
  EXPECT_NE(usage_error({"--interval-ms", "-5"}), "");
  EXPECT_EQ(usage_error({"--file", ""}), "--file needs a path");
  EXPECT_EQ(usage_error({"--vmclock-path="}), "--vmclock-path needs a path");
  EXPECT_NE(usage_error({"extra"}), "");
}

// ---- The follower, step by step ----

// A simulated VMClock page: a regular file with the real layout, written as a hypervisor
// writes it (seq_count odd while it does).
class SimulatedVmclock {
 public:
  SimulatedVmclock() : path_(testing::temp_path("vmclock")) {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 4096), 0);
    page_ =
        static_cast<unsigned char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    close(fd);
    const uint32_t magic = genid::kVmclockMagic, size = 4096;
    const uint16_t version = 1;
    const uint64_t flags = genid::kVmclockFlagGenCounterPresent;
    std::memcpy(page_ + genid::kVmclockOffsetMagic, &magic, 4);
    std::memcpy(page_ + genid::kVmclockOffsetSize, &size, 4);
    std::memcpy(page_ + genid::kVmclockOffsetVersion, &version, 2);
    std::memcpy(page_ + genid::kVmclockOffsetFlags, &flags, 8);
    set(77);
  }
  ~SimulatedVmclock() { munmap(page_, 4096); }
  void set(uint64_t generation) {
    seq(seq() + 1);
    std::memcpy(page_ + genid::kVmclockOffsetGeneration, &generation, 8);
    seq(seq() + 1);
  }
  uint32_t seq() const {
    uint32_t value;
    std::memcpy(&value, page_ + genid::kVmclockOffsetSeqCount, 4);
    return value;
  }
  void seq(uint32_t value) { std::memcpy(page_ + genid::kVmclockOffsetSeqCount, &value, 4); }
  void corrupt_magic() { std::memset(page_, 0, 4); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  unsigned char* page_;
};

class Follow : public ::testing::Test {
 protected:
  void SetUp() override {
    counter_ = testing::temp_path("generation");
    options_.counter_file = counter_;
    options_.vmclock_path = vmclock_.path();
    options_.sysgenid_path = testing::temp_path("no-sysgenid");
    options_.interval_ms = 1;
    options_.test_sources = true;
  }
  void TearDown() override {
    tools::g_kernel_ioctl = saved_ioctl_;
    if (socket_[0] >= 0) close(socket_[0]);
    if (socket_[1] >= 0) close(socket_[1]);
  }
  void only(bool vmclock, bool uevent, bool sysgenid) {
    options_.vmclock = vmclock;
    options_.uevent = uevent;
    options_.sysgenid = sysgenid;
    options_.sources_named = true;
  }
  std::unique_ptr<Follower> follower() {
    return std::make_unique<Follower>(options_,
                                      [this](const std::string& line) { log_.push_back(line); });
  }
  genid::Generation generation() const {
    genid::Generation value = 0;
    EXPECT_EQ(genid::counter_file_read(counter_, &value), "");
    return value;
  }
  // The injected uevent descriptor: one end of a datagram socketpair, the other to send.
  void inject_uevents() {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, socket_), 0);
    options_.uevent_fd = socket_[0];
  }
  void send(const std::string& payload) {
    ASSERT_EQ(::send(socket_[1], payload.data(), payload.size(), 0),
              static_cast<ssize_t>(payload.size()));
  }

  SimulatedVmclock vmclock_;
  std::string counter_;
  FollowOptions options_;
  std::vector<std::string> log_;
  int socket_[2] = {-1, -1};
  tools::KernelIoctl saved_ioctl_ = tools::g_kernel_ioctl;
};

TEST_F(Follow, VmclockChangeBumpsTheCounterFileOnce) {
  only(true, false, false);
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  EXPECT_EQ(f->watched(), std::vector<std::string>{"vmclock"});
  const genid::Generation start = generation();  // start() created the file
  EXPECT_EQ(f->step(0), 0);                      // unchanged: nothing to do
  EXPECT_EQ(f->step(0), 0);
  EXPECT_EQ(generation(), start);
  vmclock_.set(78);
  EXPECT_EQ(f->step(0), 1);
  const genid::Generation bumped = generation();
  EXPECT_NE(bumped, start);
  EXPECT_EQ(f->step(0), 0);  // seen once, bumped once
  EXPECT_EQ(generation(), bumped);
  vmclock_.set(12);  // any other value, not only a larger one
  EXPECT_EQ(f->step(0), 1);
  EXPECT_NE(generation(), bumped);
  EXPECT_EQ(f->bumps(), 2u);
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(
      log_.back().find("vmclock: vm_generation_counter 78 -> 12: " + counter_ + " bumped to "),
      std::string::npos)
      << log_.back();
}

TEST_F(Follow, WaitsTheIntervalForAVmclockWithoutNotifications) {
  only(true, false, false);
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  std::thread writer([this] {
    usleep(20000);
    vmclock_.set(99);
  });
  int bumps = 0;
  for (int i = 0; i < 200 && bumps == 0; ++i) bumps = f->step();  // interval 1 ms
  writer.join();
  EXPECT_EQ(bumps, 1);
}

TEST_F(Follow, AWedgedSeqlockIsOneChange) {
  only(true, false, false);
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  vmclock_.seq(vmclock_.seq() + 1);  // odd for good: the generation reads "unknown"
  EXPECT_EQ(f->step(0), 1);
  EXPECT_EQ(f->step(0), 0);
  EXPECT_NE(log_.back().find("-> unknown"), std::string::npos) << log_.back();
}

TEST_F(Follow, ARegularFileIsNoVmclockWithoutTestSources) {
  only(true, false, false);
  options_.test_sources = false;
  EXPECT_NE(follower()->start().find("a regular file is no VMClock device"), std::string::npos);
}

TEST_F(Follow, ABadPageIsRefused) {
  only(true, false, false);
  vmclock_.corrupt_magic();
  EXPECT_NE(follower()->start().find("bad magic"), std::string::npos);
}

TEST_F(Follow, NoSourceIsAnError) {
  options_.vmclock_path = testing::temp_path("absent");
  options_.uevent = false;
  const std::string error = follower()->start();
  EXPECT_NE(error.find("no source to follow"), std::string::npos) << error;
}

TEST_F(Follow, DefaultSourcesTakeWhatOpens) {
  options_.uevent = false;  // no netlink socket inside the sandbox's tests
  auto f = follower();
  ASSERT_EQ(f->start(), "");  // sysgenid is missing: logged, not an error
  EXPECT_EQ(f->watched(), std::vector<std::string>{"vmclock"});
  bool logged = false;
  for (const auto& line : log_) logged |= line.rfind("not watched: sysgenid: ", 0) == 0;
  EXPECT_TRUE(logged);
}

TEST_F(Follow, TheVmgenidUeventBumps) {
  only(false, true, false);
  inject_uevents();
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  const genid::Generation start = generation();
  send(lit("add@/devices/x\0ACTION=add\0SEQNUM=1\0"));
  send("garbage without a header");
  EXPECT_EQ(f->step(0), 0);
  EXPECT_EQ(generation(), start);
  send(kVmgenidChange);
  EXPECT_EQ(f->step(0), 1);
  EXPECT_NE(generation(), start);
  EXPECT_NE(log_.back().find("uevent: change@/devices/LNXSYSTM:00/LNXSYBUS:00/QEMUVGID:00 "
                             "NEW_VMGENID=1: "),
            std::string::npos)
      << log_.back();
  // Two in a row (a burst): one bump.
  send(kVmgenidChange);
  send(kVmgenidChange);
  EXPECT_EQ(f->step(0), 1);
  EXPECT_EQ(f->step(0), 0);
}

TEST_F(Follow, AUeventFromUserSpaceIsIgnored) {
  only(false, true, false);
  options_.test_sources = false;
  inject_uevents();
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  const genid::Generation start = generation();
  send(kVmgenidChange);  // a socketpair's sender is no kernel
  EXPECT_EQ(f->step(0), 0);
  EXPECT_EQ(generation(), start);
}

TEST_F(Follow, ReseedKernelRunsBeforeEachBump) {
  only(true, false, false);
  options_.reseed_kernel = true;
  static std::vector<unsigned long> requests;
  requests.clear();
  tools::g_kernel_ioctl = [](int, unsigned long request, void*) {
    requests.push_back(request);
    return 0;
  };
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  EXPECT_EQ(f->step(0), 0);
  EXPECT_TRUE(requests.empty());
  vmclock_.set(1);
  EXPECT_EQ(f->step(0), 1);
  EXPECT_EQ(requests, (std::vector<unsigned long>{RNDADDENTROPY, RNDRESEEDCRNG}));
  EXPECT_NE(log_.back().find("--reseed-kernel: mixed into the pool: yes"), std::string::npos)
      << log_.back();
}

// ---- SysGenID, as a tracked watcher ----

std::string g_counter_at_ack;
genid::Generation g_generation_at_ack = 0;

TEST_F(Follow, SysgenidIsAcknowledgedOnlyAfterTheBump) {
  fake::install();
  options_.sysgenid_path = testing::temp_path("sysgenid");
  fake::create_node(options_.sysgenid_path, 5);
  only(false, false, true);
  auto f = follower();
  ASSERT_EQ(f->start(), "");
  EXPECT_EQ(f->watched(), std::vector<std::string>{"sysgenid"});
  int tracked = 0;
  for (int d = 0; d < fake::kMaxDescriptions; ++d) tracked += fake::kernel().tracked[d];
  EXPECT_EQ(tracked, 1);  // an overseer waits for it
  const genid::Generation start = generation();
  EXPECT_EQ(f->step(0), 0);
  EXPECT_EQ(generation(), start);

  // The bump fails (the counter file replaced by a directory): no acknowledgement.
  fake::bump();
  const std::string aside = counter_ + ".aside";
  ASSERT_EQ(rename(counter_.c_str(), aside.c_str()), 0);
  ASSERT_EQ(mkdir(counter_.c_str(), 0755), 0);
  const uint32_t accepted = fake::kernel().writes_accepted;
  EXPECT_EQ(f->step(0), 0);
  EXPECT_EQ(fake::kernel().writes_accepted, accepted);
  EXPECT_NE(log_.back().find("bump failed"), std::string::npos) << log_.back();

  // It works again: bumped, then acknowledged (the counter file already moved then).
  ASSERT_EQ(rmdir(counter_.c_str()), 0);
  ASSERT_EQ(rename(aside.c_str(), counter_.c_str()), 0);
  g_counter_at_ack = counter_;
  g_generation_at_ack = start;
  fake::hooks().before_write = [](int, uint32_t) {
    ASSERT_EQ(genid::counter_file_read(g_counter_at_ack, &g_generation_at_ack), "");
  };
  EXPECT_EQ(f->step(0), 1);
  fake::hooks().before_write = nullptr;
  EXPECT_EQ(fake::kernel().writes_accepted, accepted + 1);
  EXPECT_NE(g_generation_at_ack, start);
  EXPECT_EQ(g_generation_at_ack, generation());
  EXPECT_NE(log_.back().find("sysgenid: generation 6: "), std::string::npos) << log_.back();
  EXPECT_EQ(f->step(0), 0);  // acknowledged: nothing new
  for (int d = 0; d < fake::kMaxDescriptions; ++d) fake::kernel().tracked[d] = false;
}

}  // namespace
}  // namespace snapsafe
