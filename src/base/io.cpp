#include "base/io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/utf8.h"

namespace synth {

std::string read_file(const std::string& path) {
    struct stat st;
    SYNTH_CHECK(::stat(path.c_str(), &st) == 0, "cannot open '", path, "': ", std::strerror(errno));
    SYNTH_CHECK(!S_ISDIR(st.st_mode), "'", path, "' is a directory, not a file");
    // A device or a pipe (/dev/zero, a FIFO) could stream forever, and a file larger than half
    // the memory cannot be held: both are refused before a byte is read.
    SYNTH_CHECK(S_ISREG(st.st_mode), "'", path, "' is not a regular file (a device, pipe or socket)");
    const long long limit = (long long)::sysconf(_SC_PHYS_PAGES) * ::sysconf(_SC_PAGESIZE) / 2;
    SYNTH_CHECK(limit <= 0 || (long long)st.st_size <= limit, "'", path, "' is ", st.st_size,
                " bytes, more than half of this machine's memory");
    FILE* f = std::fopen(path.c_str(), "rb");
    SYNTH_CHECK(f, "cannot open '", path, "': ", std::strerror(errno));
    std::string out;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    bool bad = std::ferror(f);
    std::fclose(f);
    SYNTH_CHECK(!bad, "error reading '", path, "'");
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

long long write_fail_after_for_testing = -1;

void write_file_atomic(const std::string& path, const std::string& bytes) {
    // The rename would replace whatever `path` is: only a regular file (or nothing) may be.
    struct stat st;
    SYNTH_CHECK(::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode), "cannot write '", path, "': it exists and is ",
                S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file",
                ", which writing it would replace");
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SYNTH_CHECK(fd >= 0, "cannot write '", tmp, "': ", std::strerror(errno));
    const bool inject = write_fail_after_for_testing >= 0;
    const size_t size = inject ? std::min(bytes.size(), (size_t)write_fail_after_for_testing) : bytes.size();
    write_fail_after_for_testing = -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = ::write(fd, bytes.data() + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            fail("cannot write '", path, "': ", std::strerror(e));
        }
        done += (size_t)w;
    }
    if (inject) {
        ::close(fd);
        ::unlink(tmp.c_str());
        fail("cannot write '", path, "': injected failure after ", done, " bytes (write_fail_after_for_testing)");
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        fail("cannot write '", path, "': ", std::strerror(e));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        fail("cannot rename '", tmp, "' to '", path, "': ", std::strerror(e));
    }
    // The rename is durable only once the directory entry is: fsync the directory too.
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void ensure_writable_dir(const std::string& dir) {
    std::string partial;
    for (size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
                fail("cannot create directory '", partial, "': ", std::strerror(errno));
        }
        if (i < dir.size()) partial += dir[i];
    }
    std::string probe = dir + "/.synth-write-probe." + std::to_string(::getpid());
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SYNTH_CHECK(fd >= 0, "directory '", dir, "' is not writable: ", std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

void check_output_path(const std::string& path, const std::vector<std::string>& inputs, const std::string& flag) {
    namespace fs = std::filesystem;
    SYNTH_CHECK(!path.empty(), flag, ": the output path is empty");
    SYNTH_CHECK(path.back() != '/', flag, "='", path, "' names a directory, not an output file");
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(path, ec);
    const bool exists = !ec && fs::exists(st);
    if (exists) {
        SYNTH_CHECK(!fs::is_symlink(st), flag, "='", path, "' is a symbolic link: writing would replace the link, "
                    "not its target; give the target's path");
        SYNTH_CHECK(fs::is_regular_file(st), flag, "='", path, "' exists and is not a regular file (",
                    fs::is_directory(st) ? "a directory" : "a device, FIFO or socket", "); give a file path");
    }
    for (const std::string& in : inputs) {
        std::error_code e2;
        const bool same = in == path || (exists && fs::exists(in, e2) && fs::equivalent(in, path, e2));
        SYNTH_CHECK(!same, flag, "='", path, "' is also an input of this command ('", in,
                    "'): writing it would destroy what is being read; give another output path");
    }
    const fs::path parent = fs::path(path).parent_path();
    ensure_writable_dir(parent.empty() ? "." : parent.string());
}

void check_generated_dir(const std::string& dir, const std::string& marker, const std::string& flag) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(dir, ec))) return;
    SYNTH_CHECK(fs::is_directory(dir, ec), flag, "='", dir, "' exists and is not a directory");
    if (fs::exists(dir + "/" + marker, ec)) return;
    auto it = fs::directory_iterator(dir, ec);
    SYNTH_CHECK(!ec, flag, "='", dir, "': cannot list it: ", ec.message());
    SYNTH_CHECK(it == fs::directory_iterator(), flag, "='", dir, "' holds files this command did not write (no ",
                marker, " in it), which regenerating would replace; give an empty or new directory");
}

void mark_generated_dir(const std::string& dir, const std::string& marker, const std::string& contents) {
    ensure_writable_dir(dir);
    write_file_atomic(dir + "/" + marker, contents);
}

void write_all(std::FILE* out, const std::string& text, const std::string& what) {
    errno = 0;
    const size_t n = std::fwrite(text.data(), 1, text.size(), out);
    const int flushed = std::fflush(out);
    SYNTH_CHECK(n == text.size() && flushed == 0 && !std::ferror(out), "cannot write to ", what, ": ",
                errno ? std::strerror(errno) : "write error", " (", n, " of ", text.size(), " bytes written)");
}

std::string read_fd_text(int fd, const std::string& what) {
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        SYNTH_CHECK(r >= 0, "cannot read ", what, ": ", std::strerror(errno));
        if (r == 0) break;
        bytes.append(buf, (size_t)r);
    }
    if (!bytes.empty()) check_text(bytes, what);
    return bytes;
}

double available_memory_bytes() {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    std::fclose(f);
    return kb * 1024.0;
}

int sweep_stale_temporaries(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    int removed = 0;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const size_t at = name.rfind(".tmp.");
        if (at == std::string::npos || !e.is_regular_file()) continue;
        const std::string pid_text = name.substr(at + 5);
        if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
        const long pid = std::atol(pid_text.c_str());
        if (pid > 0 && (::kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;  // its writer may still run
        if (fs::remove(e.path(), ec)) ++removed;
    }
    return removed;
}

}  // namespace synth
