// Trusted opening of generation files: see file_trust.h for the rules.
#include "genid/file_trust.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
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

std::string shown(const std::vector<std::string>& where) {
  std::string text;
  for (const std::string& part : where) text += "/" + part;
  return text.empty() ? "/" : text;
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

// Checks a directory on the way; "" if it may be trusted.
std::string directory_problem(const std::string& path, const std::vector<std::string>& where,
                              const struct stat& st) {
  if (!S_ISDIR(st.st_mode)) return path + ": open: " + std::strerror(ENOTDIR);
  if (const char* reason = untrusted_reason(st, /*is_dir=*/true)) {
    return refused(path, "directory " + shown(where), st, reason);
  }
  return "";
}

int open_root(const std::string& path, std::string* error) {
  const int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    *error = errno_message(path, "open /");
    if (fd >= 0) close(fd);
    return -1;
  }
  *error = directory_problem(path, {}, st);
  if (!error->empty()) {
    close(fd);
    return -1;
  }
  return fd;
}

// Walks `path` from "/", checking every directory (and every symlink) on the way. Stops
// before the last component and returns a descriptor on its directory, with the last
// component's name in *name. With `follow_last`, a symlink at the last component is
// resolved (under the same rules) first.
int walk(const std::string& path, bool follow_last, std::string* name, std::string* error) {
  if (path.empty()) {
    *error = "empty path";
    return -1;
  }
  const std::string absolute = absolute_path(path);
  if (absolute.empty()) {
    *error = errno_message(path, "getcwd");
    return -1;
  }
  std::vector<std::string> pending = split(absolute);
  if (pending.empty()) {
    *error = path + ": not a regular file";  // "/" itself
    return -1;
  }
  std::reverse(pending.begin(), pending.end());  // back() is the next component
  std::vector<std::string> where;                // the directory dirfd is, for messages
  int dirfd = open_root(path, error);
  if (dirfd < 0) return -1;
  int symlinks = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    const bool last = pending.empty();
    if (last && !follow_last) {
      *name = std::move(part);
      return dirfd;
    }
    const int fd = openat(dirfd, part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      *error = errno_message(path, "open");
      if (fd >= 0) close(fd);
      close(dirfd);
      return -1;
    }
    if (S_ISLNK(st.st_mode)) {
      std::vector<std::string> link_where = where;
      link_where.push_back(part);
      char target[PATH_MAX];
      const ssize_t length = readlinkat(fd, "", target, sizeof target - 1);
      close(fd);
      std::string problem;
      if (!trusted_uid(st.st_uid)) {
        problem = refused(path, "symbolic link " + shown(link_where), st,
                          "owned by another user (neither root nor the effective user)");
      } else if (++symlinks > kMaxSymlinks) {
        errno = ELOOP;
        problem = errno_message(path, "open");
      } else if (length <= 0) {
        problem = errno_message(path, "readlink");
      }
      if (!problem.empty()) {
        *error = problem;
        close(dirfd);
        return -1;
      }
      target[length] = '\0';
      std::vector<std::string> parts = split(target);
      pending.insert(pending.end(), parts.rbegin(), parts.rend());
      if (target[0] == '/') {
        close(dirfd);
        where.clear();
        dirfd = open_root(path, error);
        if (dirfd < 0) return -1;
      }
      if (pending.empty()) {  // a link to "/"
        close(dirfd);
        *error = path + ": not a regular file";
        return -1;
      }
      continue;
    }
    if (last) {  // follow_last, and the last component is not a link: the caller opens it
      close(fd);
      *name = std::move(part);
      return dirfd;
    }
    if (part == "..") {
      if (!where.empty()) where.pop_back();
    } else {
      where.push_back(part);
    }
    *error = directory_problem(path, where, st);
    close(dirfd);
    if (!error->empty()) {
      close(fd);
      return -1;
    }
    dirfd = fd;
  }
  close(dirfd);  // not reached: the loop returns at the last component
  *error = path + ": not a regular file";
  return -1;
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

int open_trusted_parent(const std::string& path, std::string* name, std::string* error) {
  const int dirfd = walk(path, /*follow_last=*/false, name, error);
  if (dirfd >= 0 && *name == "..") {
    close(dirfd);
    *error = path + ": not a regular file";
    return -1;
  }
  return dirfd;
}

int open_trusted(const std::string& path, int access, LastComponent last, struct stat* st,
                 std::string* error) {
  const bool device_ok = last == LastComponent::kRegularOrCharDevice;
  std::string name;
  const int dirfd = walk(path, /*follow_last=*/device_ok, &name, error);
  if (dirfd < 0) return -1;
  // First a look that opens nothing: a device or FIFO planted here is never opened.
  const int look = openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat seen;
  if (look < 0 || fstat(look, &seen) != 0) {
    *error = errno_message(path, "open");
    if (look >= 0) close(look);
    close(dirfd);
    return -1;
  }
  close(look);
  int fd = -1;
  if (S_ISLNK(seen.st_mode)) {
    *error = path + ": refused: a symbolic link (the file must be a regular file at this path; "
                    "snapsafe does not follow a link here)";
  } else if (!S_ISREG(seen.st_mode) && !(device_ok && S_ISCHR(seen.st_mode))) {
    *error = path + (device_ok ? ": not a character device or regular file"
                               : ": not a regular file");
  } else if (const char* reason = untrusted_reason(seen, /*is_dir=*/false)) {
    *error = refused(path, "the file", seen, reason);
  } else {
    fd = openat(dirfd, name.c_str(), access | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      *error = errno_message(path, "open");
    } else if (fstat(fd, st) != 0) {
      *error = errno_message(path, "fstat");
      close(fd);
      fd = -1;
    } else if (st->st_dev != seen.st_dev || st->st_ino != seen.st_ino) {
      *error = path + ": refused: the file was replaced while it was being opened";
      close(fd);
      fd = -1;
    }
  }
  close(dirfd);
  return fd;
}

}  // namespace snapsafe::genid
