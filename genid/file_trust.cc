// Trusted opening of generation files: see file_trust.h for the rules.
#include "genid/file_trust.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace snapsafe::genid {
namespace {

constexpr int kMaxSymlinks = 40;  // as the kernel's own path walk (ELOOP)

bool trusted_uid(uid_t uid) { return uid == 0 || uid == geteuid(); }

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string errno_message(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// Sets *error and errno (what callers branch on: ENOENT, EPERM, ...); returns -1.
int fail(std::string* error, std::string message, int error_number) {
  *error = std::move(message);
  errno = error_number;
  return -1;
}
// The same, returning false.
bool failed(std::string* error, std::string message, int error_number) {
  fail(error, std::move(message), error_number);
  return false;
}

// "PATH: WHAT: strerror(errno)" with errno as it was when called.
std::string errno_failure(const std::string& path, const char* what, int* error_number) {
  *error_number = errno;
  return errno_message(path, what);
}

// Splits at '/', dropping empty and "." components ("a//b/./c" -> a, b, c).
std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

std::string refused(const std::string& path, const std::string& what, const struct stat& st,
                    const char* reason) {
  return path + ": refused: " + what + " is " + reason + " (uid " + std::to_string(st.st_uid) +
         ", mode " + octal_mode(st.st_mode) + "; trusted: root and uid " +
         std::to_string(geteuid()) + "): whoever can write or replace it controls the generation";
}

// The directories the walk is in, from its root: fds_[0] is the root, fds_.back() the
// current directory, each one checked when it was entered. ".." goes back one (never
// above the root), so nothing the path or a link says can leave the root.
class DirStack {
 public:
  DirStack() = default;
  DirStack(const DirStack&) = delete;
  DirStack& operator=(const DirStack&) = delete;
  ~DirStack() { close_all(); }

  // (Re)starts at `root` (kThisProcessRoot: this process's "/"), checked as a directory.
  bool start(int root, const std::string& path, std::string* error) {
    close_all();
    const int fd = root == kThisProcessRoot ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
                                            : fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      int saved;
      std::string message = errno_failure(path, "open the root", &saved);
      return failed(error, std::move(message), saved);
    }
    return enter(fd, "", path, error);
  }
  // Takes `fd` (an O_PATH descriptor on `name` in the current directory) as the current
  // directory if it is a trusted directory; closes it either way.
  bool enter(int fd, const std::string& name, const std::string& path, std::string* error) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int saved = errno;
      close(fd);
      return failed(error, errno_message(path, "fstat"), saved);
    }
    if (!fds_.empty()) names_.push_back(name);
    fds_.push_back(fd);
    if (!S_ISDIR(st.st_mode)) {
      return failed(error, path + ": open: " + std::strerror(ENOTDIR), ENOTDIR);
    }
    if (const char* reason = untrusted_reason(st, /*is_dir=*/true)) {
      return failed(error, refused(path, "directory " + shown(), st, reason), EPERM);
    }
    return true;
  }
  void up() {
    if (fds_.size() <= 1) return;  // the root's ".." is the root
    close(fds_.back());
    fds_.pop_back();
    names_.pop_back();
  }
  int current() const { return fds_.back(); }
  // Hands the current directory's descriptor to the caller.
  int release() {
    const int fd = fds_.back();
    fds_.pop_back();
    return fd;
  }
  // The current directory as a path from the root, for messages.
  std::string shown(const std::string& below = "") const {
    std::string text;
    for (const std::string& name : names_) text += "/" + name;
    if (!below.empty()) text += "/" + below;
    return text.empty() ? "/" : text;
  }

 private:
  void close_all() {
    for (const int fd : fds_) close(fd);
    fds_.clear();
    names_.clear();
  }
  std::vector<int> fds_;
  std::vector<std::string> names_;
};

// The path's components, next one at back(). A relative path starts at the current
// directory when the walk starts at this process's "/", at the root otherwise.
bool components(const std::string& path, int root, std::vector<std::string>* pending,
                std::string* error) {
  if (path.empty()) return failed(error, "empty path", ENOENT);
  const std::string absolute = root == kThisProcessRoot ? absolute_path(path) : path;
  if (absolute.empty()) {
    int saved;
    std::string message = errno_failure(path, "getcwd", &saved);
    return failed(error, std::move(message), saved);
  }
  *pending = split(absolute);
  std::reverse(pending->begin(), pending->end());
  return true;
}

// Opens one component of the current directory without following it (O_PATH opens
// nothing) and stats it.
int open_component(int dirfd, const std::string& part, struct stat* st, const std::string& path,
                   std::string* error) {
  const int fd = openat(dirfd, part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int saved;
    std::string message = errno_failure(path, "open", &saved);
    return fail(error, std::move(message), saved);
  }
  if (fstat(fd, st) != 0) {
    const int saved = errno;
    close(fd);
    return fail(error, errno_message(path, "fstat"), saved);
  }
  return fd;
}

// A symbolic link `part` of the current directory (`fd`, `st`): if it may be followed,
// its target's components go to the front of *pending, and an absolute target restarts
// the walk at the root. Closes `fd`.
bool follow_symlink(int fd, const struct stat& st, const std::string& part, int root,
                    DirStack* dirs, std::vector<std::string>* pending, int* symlinks,
                    const std::string& path, std::string* error) {
  char target[PATH_MAX];
  const ssize_t length = readlinkat(fd, "", target, sizeof target - 1);
  const int saved = errno;
  close(fd);
  if (!trusted_uid(st.st_uid)) {
    return failed(error,
                  refused(path, "symbolic link " + dirs->shown(part), st,
                          "owned by another user (neither root nor the effective user)"),
                  EPERM);
  }
  if (++*symlinks > kMaxSymlinks) {
    return failed(error, path + ": open: " + std::strerror(ELOOP), ELOOP);
  }
  if (length <= 0) {
    errno = length == 0 ? ENOENT : saved;  // for the message
    return failed(error, errno_message(path, "readlink"), errno);
  }
  target[length] = '\0';
  const std::vector<std::string> parts = split(target);
  pending->insert(pending->end(), parts.rbegin(), parts.rend());
  if (target[0] == '/') return dirs->start(root, path, error);
  return true;
}

// Walks `path` from `root`, checking every directory (and every symlink) on the way.
// Stops before the last component and returns a descriptor on its directory, with the
// last component's name in *name. With `follow_last`, a symlink at the last component is
// resolved (under the same rules) first.
int walk(const std::string& path, int root, bool follow_last, std::string* name,
         std::string* error) {
  std::vector<std::string> pending;
  if (!components(path, root, &pending, error)) return -1;
  DirStack dirs;
  if (!dirs.start(root, path, error)) return -1;
  int symlinks = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    const bool last = pending.empty();
    if (part == "..") {
      if (last) break;  // a directory
      dirs.up();
      continue;
    }
    if (last && !follow_last) {
      *name = std::move(part);
      return dirs.release();
    }
    struct stat st;
    const int fd = open_component(dirs.current(), part, &st, path, error);
    if (fd < 0) return -1;
    if (S_ISLNK(st.st_mode)) {
      if (!follow_symlink(fd, st, part, root, &dirs, &pending, &symlinks, path, error)) return -1;
      continue;
    }
    if (last) {  // follow_last, and the last component is not a link: the caller opens it
      close(fd);
      *name = std::move(part);
      return dirs.release();
    }
    if (!dirs.enter(fd, part, path, error)) return -1;
  }
  return fail(error, path + ": not a regular file", EISDIR);  // the root, "..", a link to "/"
}

}  // namespace

const char* untrusted_reason(const struct stat& st, bool is_dir) {
  if (!trusted_uid(st.st_uid)) return "owned by another user (neither root nor the effective user)";
  const bool writable_by_others = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (is_dir) {
    if (writable_by_others && !(st.st_mode & S_ISVTX)) {
      return "writable by group or others and not sticky";
    }
  } else if (S_ISREG(st.st_mode) && writable_by_others) {
    return "writable by group or others";
  }
  return nullptr;
}

std::string absolute_path(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == nullptr) return "";
  return std::string(cwd) + "/" + path;
}

int open_trusted_parent(const std::string& path, std::string* name, std::string* error, int root) {
  return walk(path, root, /*follow_last=*/false, name, error);
}

int open_root_directory(const std::string& directory, std::string* error) {
  if (directory.empty() || directory[0] != '/') {
    return fail(error, "\"" + directory + "\": the root must be an absolute path", EINVAL);
  }
  const int fd = open(directory.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int saved;
    std::string message = errno_failure(directory, "open", &saved);
    return fail(error, std::move(message), saved);
  }
  DirStack check;  // the directory rule, as every walk from it will apply it
  if (!check.start(fd, directory, error)) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int open_trusted(const std::string& path, int access, LastComponent last, struct stat* st,
                 std::string* error, int root) {
  const bool device_ok = last == LastComponent::kRegularOrCharDevice;
  std::string name;
  const int dirfd = walk(path, root, /*follow_last=*/device_ok, &name, error);
  if (dirfd < 0) return -1;
  // First a look that opens nothing: a device or FIFO planted here is never opened.
  const int look = openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat seen;
  if (look < 0 || fstat(look, &seen) != 0) {
    int saved;
    std::string message = errno_failure(path, "open", &saved);
    if (look >= 0) close(look);
    close(dirfd);
    return fail(error, std::move(message), saved);
  }
  close(look);
  int fd = -1;
  int error_number = EPERM;
  if (S_ISLNK(seen.st_mode)) {
    *error = path +
             ": refused: a symbolic link (the file must be a regular file at this path; "
             "snapsafe does not follow a link here)";
  } else if (!S_ISREG(seen.st_mode) && !(device_ok && S_ISCHR(seen.st_mode))) {
    *error =
        path + (device_ok ? ": not a character device or regular file" : ": not a regular file");
    error_number = EINVAL;
  } else if (const char* reason = untrusted_reason(seen, /*is_dir=*/false)) {
    *error = refused(path, "the file", seen, reason);
  } else {
    fd = openat(dirfd, name.c_str(), access | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      *error = errno_failure(path, "open", &error_number);
    } else if (fstat(fd, st) != 0) {
      *error = errno_failure(path, "fstat", &error_number);
      close(fd);
      fd = -1;
    } else if (st->st_dev != seen.st_dev || st->st_ino != seen.st_ino) {
      *error = path + ": refused: the file was replaced while it was being opened";
      close(fd);
      fd = -1;
    }
  }
  close(dirfd);
  if (fd < 0) errno = error_number;
  return fd;
}

}  // namespace snapsafe::genid
