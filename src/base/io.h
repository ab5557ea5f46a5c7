// io.h: reading whole files (and splitting them into lines) with clear errors, and atomic writes.
//
// write_file_atomic writes to "<path>.tmp.<pid>", flushes, fsyncs, renames it over <path> and
// fsyncs the directory: a crash or a full disk half-way leaves the previous file intact.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace synth {

// The whole file as bytes. Throws synth::Error if it is missing, unreadable or a directory.
std::string read_file(const std::string& path);
// The lines of `text` without their '\n'; a final line without '\n' still counts, and a
// trailing '\n' does not start an extra (empty) line.
std::vector<std::string> split_lines(const std::string& text);
// Atomic replace of `path` with `bytes` (see above). Throws synth::Error on any failure, and
// before writing anything when `path` exists but is not a regular file (a directory, a
// symlink, a device or FIFO: the rename would replace it).
void write_file_atomic(const std::string& path, const std::string& bytes);
// Test hook for interrupted saves: when >= 0, the next write_file_atomic writes only this many
// bytes of its temporary file and then fails as a full disk would (the hook resets to -1).
extern long long write_fail_after_for_testing;
// Creates `dir` (and parents) if needed and checks a file can be written there; throws if not.
// Runners call this before training so an unwritable results directory fails in second one.
void ensure_writable_dir(const std::string& dir);

// Outputs that never destroy: before any work, an output file `path` (named by `flag` in
// errors, e.g. "--out") must be absent or a regular file (not a directory, a symlink, a device
// or a FIFO, which the atomic rename would replace), must not be any of `inputs` (the files
// the same command reads: the same file by device and inode, or the same path), and its
// directory must exist or be creatable, and be writable.
void check_output_path(const std::string& path, const std::vector<std::string>& inputs, const std::string& flag);
// A directory a command regenerates files into (e.g. cls's --listops-dir) must be ours: absent,
// empty, or holding `marker` (a file the command writes there, mark_generated_dir), so that
// files a user put there are never replaced. Throws naming `flag` and the directory.
void check_generated_dir(const std::string& dir, const std::string& marker, const std::string& flag);
// Creates `dir` if needed and writes <dir>/<marker> with `contents` (atomically).
void mark_generated_dir(const std::string& dir, const std::string& marker, const std::string& contents);

// Writes all of `text` to `out` and flushes it; throws naming `what` (e.g. "standard output")
// when any of it could not be written (a full disk, a closed pipe), so that a command whose
// output was lost does not exit 0.
void write_all(std::FILE* out, const std::string& text, const std::string& what);
// Everything readable from file descriptor `fd` (e.g. 0, standard input) as text, with the
// checks training data gets (check_text: no NUL byte, valid UTF-8), naming `what`; "" if empty.
std::string read_fd_text(int fd, const std::string& what);

// MemAvailable of /proc/meminfo in bytes, or 0 where it cannot be read.
double available_memory_bytes();

// Removes the "<name>.tmp.<pid>" files that write_file_atomic left in `dir` when a process was
// killed mid-write (pids no longer running); returns how many. A missing `dir` is no error.
int sweep_stale_temporaries(const std::string& dir);

}  // namespace synth
