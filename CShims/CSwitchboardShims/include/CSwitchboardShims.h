// Small C helpers for what Swift cannot express well on Linux. Every symbol is prefixed `sb_`.
#ifndef C_SWITCHBOARD_SHIMS_H
#define C_SWITCHBOARD_SHIMS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>

/// errno of the calling thread.
int sb_errno(void);

// MARK: epoll
/// Interest bits, re-exported so Swift needs no knowledge of the packed `struct epoll_event`.
extern const uint32_t SB_EPOLLIN, SB_EPOLLOUT, SB_EPOLLERR, SB_EPOLLHUP, SB_EPOLLRDHUP, SB_EPOLLET;

/// An opaque array of epoll events; `sb_epoll_events_*` read it.
typedef struct sb_epoll_events sb_epoll_events;
sb_epoll_events *sb_epoll_events_create(int capacity);
void sb_epoll_events_destroy(sb_epoll_events *events);
uint64_t sb_epoll_events_data(const sb_epoll_events *events, int index);
uint32_t sb_epoll_events_mask(const sb_epoll_events *events, int index);

int sb_epoll_create(void);
/// op: 1 add, 2 del, 3 mod (EPOLL_CTL_*).
int sb_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int sb_epoll_wait(int epfd, sb_epoll_events *events, int capacity, int timeout_ms);

// MARK: descriptors
int sb_eventfd(void);
int sb_eventfd_write(int fd);
int sb_eventfd_read(int fd);
/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (threads created later inherit the
/// mask) and ignores SIGPIPE. Returns 0 or -1.
int sb_block_signals(void);
/// Unblocks SIGTERM, SIGINT and SIGHUP in the calling thread: a process that starts children
/// (which inherit the mask) undoes a mask inherited from whoever started it. Returns 0 or -1.
int sb_unblock_signals(void);
/// Ignores SIGPIPE process-wide: a write to a reset socket then fails with EPIPE instead of
/// killing the process.
void sb_ignore_sigpipe(void);
/// A non-blocking signalfd for SIGTERM, SIGINT and SIGHUP.
int sb_signalfd(void);
/// Reads one signal from a signalfd: the signal number, 0 when none is pending, -1 on error.
int sb_signalfd_read(int fd);

// MARK: sockets
int sb_socket_stream(int family);
int sb_accept4(int fd);
/// Sets SO_REUSEADDR and SO_REUSEPORT.
int sb_set_reuse(int fd);
int sb_set_nodelay(int fd);
int sb_set_int_option(int fd, int level, int name, int value);
/// Binds to an IPv4 (family AF_INET, 4 address bytes) or IPv6 (AF_INET6, 16 bytes) address.
int sb_bind(int fd, int family, const uint8_t *address, uint16_t port);
int sb_connect(int fd, int family, const uint8_t *address, uint16_t port);
/// The bound port of a socket, or -1.
int sb_local_port(int fd);
/// The pending socket error (SO_ERROR) or -1 if it cannot be read.
int sb_socket_error(int fd);
/// shutdown(fd, SHUT_WR).
int sb_shutdown_write(int fd);
/// Gathered write of `count` (pointer, length) pairs laid out as `struct iovec`.
ssize_t sb_writev(int fd, const void *iovecs, int count);
ssize_t sb_read(int fd, void *buffer, size_t length);
int sb_parse_ipv4(const char *text, uint8_t out[4]);
int sb_parse_ipv6(const char *text, uint8_t out[16]);

// MARK: threads and process
/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int sb_pin_current_thread(int cpu);
/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit or -1.
long sb_raise_nofile_limit(void);
/// The event loop object running on the calling thread (unretained; NULL when none).
void *sb_current_loop(void);
void sb_set_current_loop(void *loop);
/// Monotonic clock in nanoseconds.
uint64_t sb_monotonic_ns(void);
/// Resident set size of this process in bytes, from /proc/self/statm, or 0.
uint64_t sb_rss_bytes(void);
/// Starts `path` with `argv` (NULL-terminated) and `envp` (NULL: this process's environment) in
/// its own process group. Standard input, output and error come from `stdin_fd`, `stdout_fd` and
/// `stderr_fd` (-1: /dev/null); every other descriptor is closed in the child, and it starts with
/// an empty signal mask and default handling of SIGPIPE, SIGTERM, SIGINT and SIGHUP. Unlike
/// Foundation's `Process`, it never lists /proc/self/fd, so it is safe in a process holding
/// thousands of descriptors. Returns the child's pid, or -1 with errno set.
pid_t sb_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd);

// MARK: atomics for counter arrays (Swift's Atomic cannot live in an array)
static inline void sb_atomic_add(long *counter, long value) {
    __atomic_fetch_add(counter, value, __ATOMIC_RELAXED);
}
static inline long sb_atomic_load(const long *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

#endif
