#include "runs/run_claim.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/error.h"
#include "base/io.h"
#include "base/json.h"

namespace synth {

namespace fs = std::filesystem;

namespace {

std::string this_host() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) return "unknown";
    return host;
}

std::string now_utc() {
    char buf[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool pid_running(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

const char* kTakeOver = "give --take-over to take over a claim whose writer is dead";

}  // namespace

std::string ClaimInfo::describe() const {
    return "pid " + std::to_string(pid) + " on host " + host + " (since " + started + ")";
}

bool read_claim(const std::string& dir, ClaimInfo& info) {
    const std::string path = dir + "/claim.json";
    std::error_code ec;
    if (!fs::exists(path, ec)) return false;
    try {
        const JsonObject o = parse_json_object(read_file(path), path);
        info.host = o.has("host") ? o.at("host") : "unknown";
        info.started = o.has("started") ? o.at("started") : "unknown";
        info.pid = o.has("pid") ? (long)o.num("pid") : 0;
    } catch (const Error&) {  // a writer killed while writing it (it is written atomically, so rare)
        info = ClaimInfo{"unknown", "unknown", 0};
    }
    return true;
}

RunClaim::RunClaim(const std::string& dir, bool take_over) : dir_(dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    SYNTH_CHECK(fs::is_directory(dir), "run directory ", dir, ": cannot create it (", ec.message(), ")");
    const std::string lock = dir + "/.claim.lock";
    fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    SYNTH_CHECK(fd_ >= 0, "run directory ", dir, ": cannot open ", lock, ": ", std::strerror(errno));
    ClaimInfo held;
    const bool has_file = read_claim(dir, held);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        SYNTH_CHECK(err == EWOULDBLOCK, "run directory ", dir, ": cannot lock ", lock, ": ", std::strerror(err));
        throw Error("run directory " + dir + " is in use by another run: " +
                    (has_file ? held.describe() : std::string("a process holding ") + lock) +
                    "; wait for it to end, or give this run another --run-dir");
    }
    mine_ = ClaimInfo{this_host(), now_utc(), (long)::getpid()};
    if (has_file && !(held.host == mine_.host && held.pid == mine_.pid)) {
        // We hold the lock: a live writer on this host would hold it, so a claim of this host is
        // stale. One of another host may be alive where our lock cannot see it.
        if (held.host != mine_.host && !take_over) {
            ::close(fd_);
            fd_ = -1;
            throw Error("run directory " + dir + " is claimed by " + held.describe() + " (" + dir +
                        "/claim.json); if that run is still going, wait for it, else " + kTakeOver);
        }
        std::fprintf(stderr, "warning: run directory %s: taking over the stale claim of %s (%s)\n", dir.c_str(),
                     held.describe().c_str(),
                     held.host != mine_.host ? "--take-over"
                     : pid_running(held.pid) ? "its lock was free"
                                             : "that process is gone");
    }
    JsonObject o;
    o.text("host", mine_.host);
    o.integer("pid", mine_.pid);
    o.text("started", mine_.started);
    try {
        write_file_atomic(dir + "/claim.json", o.dump() + "\n");
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

RunClaim::~RunClaim() {
    if (fd_ < 0) return;
    ClaimInfo now;
    if (read_claim(dir_, now) && now.host == mine_.host && now.pid == mine_.pid) {
        std::error_code ec;
        fs::remove(dir_ + "/claim.json", ec);
    }
    ::close(fd_);  // releases the flock
}

namespace {
std::mutex g_claims_mutex;
std::map<std::string, std::unique_ptr<RunClaim>>& claims() {
    static std::map<std::string, std::unique_ptr<RunClaim>> m;  // released at exit
    return m;
}
std::string key_of(const std::string& dir) {
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(dir, ec);
    return ec ? dir : p.string();
}
}  // namespace

void claim_run_dir(const std::string& dir, bool take_over) {
    std::lock_guard<std::mutex> g(g_claims_mutex);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string key = key_of(dir);
    if (claims().count(key)) return;
    claims()[key] = std::make_unique<RunClaim>(dir, take_over);
}

void release_run_dir(const std::string& dir) {
    std::lock_guard<std::mutex> g(g_claims_mutex);
    claims().erase(key_of(dir));
}

}  // namespace synth
