// run_claim.h: one writer per run directory. A run holds an exclusive claim on its directory
// for its whole lifetime, so a second process given the same --run-dir (a sweep started twice,
// a sweep restarted after kill -9 while its runner still trains, a typo) is refused before it
// writes anything, with a message naming the first writer.
//
// The claim is two things in the directory:
//   .claim.lock   flock(2)ed exclusively while the run lives: on a local disk the kernel drops
//                 the lock when the process dies however it dies, so a dead run never blocks.
//   claim.json    {"host", "pid", "started"} of the writer, written after the lock is held and
//                 removed when the claim ends. On a shared file system whose locks do not reach
//                 other hosts, this file is what a writer on another host sees and refuses.
// A claim.json left by a writer that died (kill -9, power loss) is stale. It is taken over
// silently but for a warning when it names this host and its pid is no longer running (or the
// lock was free, which a live writer on this host would hold); one naming another host is
// taken over only when asked (--take-over), since this host cannot see that process.
#pragma once

#include <memory>
#include <string>

namespace synth {

struct ClaimInfo {
    std::string host, started;
    long pid = 0;
    std::string describe() const;  // "pid 123 on host h (since 2026-...)"
};

class RunClaim {
public:
    // Claims `dir` (created if missing). Throws synth::Error naming the directory and the
    // holder when another live writer holds it; `take_over` also takes a claim of another host.
    RunClaim(const std::string& dir, bool take_over);
    ~RunClaim();  // removes claim.json (if it is still ours) and releases the lock
    RunClaim(const RunClaim&) = delete;
    RunClaim& operator=(const RunClaim&) = delete;
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    int fd_ = -1;
    ClaimInfo mine_;
};

// The claim file of `dir` if there is one (a live or a stale writer); false if none.
bool read_claim(const std::string& dir, ClaimInfo& info);

// Claims `dir` for the rest of this process (released at exit; a second call for the same
// directory is a no-op). What runners call where they open a run directory for a run.
void claim_run_dir(const std::string& dir, bool take_over);
// Ends this process's claim on `dir` early (a no-op without one).
void release_run_dir(const std::string& dir);

}  // namespace synth
