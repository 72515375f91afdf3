#define _GNU_SOURCE
#include "CSwitchboardShims.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

int sb_errno(void) { return errno; }

const uint32_t SB_EPOLLIN = EPOLLIN, SB_EPOLLOUT = EPOLLOUT, SB_EPOLLERR = EPOLLERR,
               SB_EPOLLHUP = EPOLLHUP, SB_EPOLLRDHUP = EPOLLRDHUP, SB_EPOLLET = EPOLLET;

struct sb_epoll_events { struct epoll_event items[1]; };

sb_epoll_events *sb_epoll_events_create(int capacity) {
    return (sb_epoll_events *)calloc((size_t)capacity, sizeof(struct epoll_event));
}
void sb_epoll_events_destroy(sb_epoll_events *events) { free(events); }
uint64_t sb_epoll_events_data(const sb_epoll_events *events, int index) {
    return events->items[index].data.u64;
}
uint32_t sb_epoll_events_mask(const sb_epoll_events *events, int index) {
    return events->items[index].events;
}

int sb_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int sb_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int sb_epoll_wait(int epfd, sb_epoll_events *events, int capacity, int timeout_ms) {
    return epoll_wait(epfd, events->items, capacity, timeout_ms);
}

int sb_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int sb_eventfd_write(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    return n == sizeof one || (n < 0 && errno == EAGAIN) ? 0 : -1;
}

int sb_eventfd_read(int fd) {
    uint64_t value;
    ssize_t n;
    do { n = read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    return n == sizeof value || (n < 0 && errno == EAGAIN) ? 0 : -1;
}

static void sb_fill_signal_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int sb_block_signals(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sb_fill_signal_set(&set);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int sb_unblock_signals(void) {
    sigset_t set;
    sb_fill_signal_set(&set);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

int sb_signalfd(void) {
    sigset_t set;
    sb_fill_signal_set(&set);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int sb_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n;
    do { n = read(fd, &info, sizeof info); } while (n < 0 && errno == EINTR);
    if (n == sizeof info) return (int)info.ssi_signo;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1;
}

int sb_socket_stream(int family) {
    return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int sb_accept4(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int sb_set_reuse(int fd) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return -1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

int sb_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int sb_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

static socklen_t sb_fill_address(struct sockaddr_storage *storage, int family,
                                 const uint8_t *address, uint16_t port) {
    memset(storage, 0, sizeof *storage);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)storage;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, address, 4);
        return sizeof *in;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)storage;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    memcpy(&in6->sin6_addr, address, 16);
    return sizeof *in6;
}

int sb_bind(int fd, int family, const uint8_t *address, uint16_t port) {
    struct sockaddr_storage storage;
    socklen_t length = sb_fill_address(&storage, family, address, port);
    if (family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    return bind(fd, (struct sockaddr *)&storage, length);
}

int sb_connect(int fd, int family, const uint8_t *address, uint16_t port) {
    struct sockaddr_storage storage;
    socklen_t length = sb_fill_address(&storage, family, address, port);
    return connect(fd, (struct sockaddr *)&storage, length);
}

int sb_local_port(int fd) {
    struct sockaddr_storage storage;
    socklen_t length = sizeof storage;
    if (getsockname(fd, (struct sockaddr *)&storage, &length) != 0) return -1;
    if (storage.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&storage)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&storage)->sin6_port);
}

int sb_socket_error(int fd) {
    int value = 0;
    socklen_t length = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0) return -1;
    return value;
}


_Static_assert(sizeof(struct iovec) == 2 * sizeof(void *), "iovec is (pointer, length)");
_Static_assert(offsetof(struct iovec, iov_len) == sizeof(void *), "iovec is (pointer, length)");

ssize_t sb_writev(int fd, const void *iovecs, int count) {
    // writev (not sendmsg) so /proc/PID/io counts the calls; SIGPIPE is ignored process-wide by
    // sb_ignore_sigpipe when the first event loop is created.
    return writev(fd, (const struct iovec *)iovecs, count);
}

void sb_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int sb_shutdown_write(int fd) { return shutdown(fd, SHUT_WR); }

ssize_t sb_read(int fd, void *buffer, size_t length) { return read(fd, buffer, length); }

int sb_parse_ipv4(const char *text, uint8_t out[4]) { return inet_pton(AF_INET, text, out) == 1 ? 0 : -1; }
int sb_parse_ipv6(const char *text, uint8_t out[16]) { return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1; }

int sb_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

long sb_raise_nofile_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    }
    return (long)limit.rlim_cur;
}

// initial-exec: read with one instruction instead of a call to __tls_get_addr (the mailbox asks
// on every cross-loop message).
static _Thread_local __attribute__((tls_model("initial-exec"))) void *sb_loop_object = 0;
void *sb_current_loop(void) { return sb_loop_object; }
void sb_set_current_loop(void *loop) { sb_loop_object = loop; }

uint64_t sb_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sb_rss_bytes(void) {
    FILE *file = fopen("/proc/self/statm", "r");
    if (!file) return 0;
    unsigned long size = 0, resident = 0;
    int matched = fscanf(file, "%lu %lu", &size, &resident);
    fclose(file);
    if (matched != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

extern char **environ;

/// One standard descriptor of a child: `fd` duplicated onto `target`, or /dev/null when -1.
static int spawn_standard(posix_spawn_file_actions_t *actions, int fd, int target) {
    if (fd < 0) return posix_spawn_file_actions_addopen(actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0);
    return posix_spawn_file_actions_adddup2(actions, fd, target);
}

pid_t sb_spawn(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = posix_spawn_file_actions_init(&actions);
    if (error) { errno = error; return -1; }
    error = posix_spawnattr_init(&attributes);
    if (error) { posix_spawn_file_actions_destroy(&actions); errno = error; return -1; }
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGHUP);
    if (!error) error = spawn_standard(&actions, stdin_fd, 0);
    if (!error) error = spawn_standard(&actions, stdout_fd, 1);
    if (!error) error = spawn_standard(&actions, stderr_fd, 2);
    if (!error) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (!error) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!error) error = posix_spawnattr_setpgroup(&attributes, 0);
    if (!error) error = posix_spawnattr_setsigmask(&attributes, &empty);
    if (!error) error = posix_spawnattr_setsigdefault(&attributes, &defaults);
    pid_t pid = -1;
    if (!error) error = posix_spawn(&pid, path, &actions, &attributes, argv, envp ? envp : environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error) { errno = error; return -1; }
    return pid;
}
