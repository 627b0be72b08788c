/* lighthouse-bridge-keeper: holds /dev/fuse descriptors so a restarted FUSE server takes the SAME
 * kernel connections back (ADR 0083). The kernel keeps a connection alive while any process
 * holds its descriptor; this process outlives the server that made it.
 *
 * Usage: lighthouse-bridge-keeper --socket PATH [--idle-exit SECONDS] [--orphan-timeout SECONDS] [-- COMMAND ARGS...]
 *
 * Socket: SOCK_SEQPACKET unix socket at PATH (0600, parent made 0700), bound under a temporary
 * name and renamed into place so a client never meets a half-made socket. PATH.lock is held with
 * flock() for the keeper's life: when another process holds it, a keeper is already there, and
 * this one exits 0 at once (or 1 in supervisor mode, whose command would otherwise never run);
 * when it is free, whatever sits at PATH is stale and replaced.
 *
 * Protocol: a connection may carry any number of requests; each gets exactly one reply.
 * Request = op byte, name (1..4096 bytes, NUL-terminated), opaque payload (<= 64 KiB):
 *   P  put, with exactly one descriptor: store under name, closing any it replaces -> K
 *   G  get -> Y + payload, with the descriptor (the keeper keeps its own) | N when not held
 *   D  drop: close the held descriptor, if any -> K
 *   L  list -> Y + each held name, NUL-terminated (the name field is ignored but required)
 *   T  (supervisor) retire the command: SIGTERM it (SIGKILL after 5 s), never restart it, and
 *      reply K once it has exited; the descriptors stay held. A successor sends this once it holds
 *      duplicates of every descriptor (rolling upgrade, ADR 0083).
 * A malformed request gets E + a reason; descriptors sent with it are closed.
 * Every 0.25 s while anything is held, each held descriptor is polled at once with no events:
 * POLLERR/POLLHUP means its FUSE connection ended (unmounted or aborted), and it is dropped. Not
 * left in the poll set: the kernel wakes every poller of /dev/fuse at each request, whatever its
 * events, so the keeper would wake as often as the server does.
 *
 * Successor (supervisor mode, PATH.lock held by a live keeper: a rolling upgrade's new pod): serve
 * PATH.next instead, and run COMMAND with LHB_KEEPER_SOCKET=PATH.next and
 * LHB_KEEPER_PREDECESSOR=PATH, so it can take every descriptor over from the predecessor. Once the
 * predecessor has exited (PATH.lock free, tried every 100 ms) move PATH.next to PATH; clients that
 * find PATH.next gone use PATH.
 *
 * --orphan-timeout S: a descriptor whose server (the last process that put or got it, watched with
 * a pidfd) exited and that nobody got within S seconds is dropped; as the last holder, that ends
 * the connection and its users get ENOTCONN. For the `mount` command's keeper, so a crashed mount
 * nobody restarts does not hang its users forever.
 * --idle-exit S: exit once nothing has been held, and nobody has asked anything, for S seconds
 * (the `mount` command's detached keeper: a mount that found it alive has S seconds to put its
 * descriptor, instead of racing an exit already due).
 * -- COMMAND: supervisor mode (node plugin entrypoint): run COMMAND with LHB_KEEPER_SOCKET=PATH,
 * restart it whenever it dies (backoff 100 ms doubling to 5 s when it ran under 2 s), reap every
 * child (PID 1 in a container), forward SIGTERM/SIGINT and then exit with the child's status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 4096
#define PAYLOAD_MAX (64 * 1024)
#define REQUEST_MAX (1 + NAME_MAX_LEN + 1 + PAYLOAD_MAX)
#define REPLY_MAX (256 * 1024)
#define MAX_CLIENTS 64
#define MAX_FDS 16

struct held {
  char *name;
  char *payload;
  size_t payload_len;
  int fd;
  /* pidfd of the last process that put or got it (its server), or -1; when that process is gone,
   * the time it went (--orphan-timeout). */
  int owner;
  double orphaned_since;
};

static struct held *held;
static size_t n_held, cap_held;
static int clients[MAX_CLIENTS];
static size_t n_clients;
static char request[REQUEST_MAX + 1];
/* Supervisor state the request handler needs: the command's pid, and a client waiting for T. */
static pid_t child;
static bool retired;
static int retire_client = -1;
static double retire_deadline;
static char reply[REPLY_MAX];

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "keeper: %s\n", line);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the held descriptors ---- */

static struct held *find(const char *name) {
  for (size_t i = 0; i < n_held; i++)
    if (strcmp(held[i].name, name) == 0) return &held[i];
  return NULL;
}

static void forget(size_t i) {
  close(held[i].fd);
  if (held[i].owner >= 0) close(held[i].owner);
  free(held[i].name);
  free(held[i].payload);
  held[i] = held[--n_held];
}

static bool store(const char *name, const char *payload, size_t len, int fd) {
  struct held *h = find(name);
  if (!h) {
    if (n_held == cap_held) {
      size_t cap = cap_held ? cap_held * 2 : 16;
      struct held *grown = realloc(held, cap * sizeof *grown);
      if (!grown) return false;
      held = grown;
      cap_held = cap;
    }
    h = &held[n_held];
    *h = (struct held){.name = strdup(name), .fd = -1, .owner = -1};
    if (!h->name) return false;
    n_held++;
  }
  char *copy = malloc(len ? len : 1);
  if (!copy) return false;
  memcpy(copy, payload, len);
  if (h->fd >= 0) close(h->fd);
  free(h->payload);
  h->payload = copy;
  h->payload_len = len;
  h->fd = fd;
  return true;
}

/* The process at the other end of client c becomes the server of h: its exit starts the orphan clock. */
static void own(struct held *h, int c) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return;
  int pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
  if (pidfd < 0) return;
  if (h->owner >= 0) close(h->owner);
  h->owner = pidfd;
  h->orphaned_since = 0;
}

/* Drops what is no longer worth holding; runs before the poll set is built, since it removes
 * entries. A connection that ended (unmounted or aborted) is dropped at once. With timeout >= 0, so
 * is a descriptor whose server died and was not replaced within timeout seconds: closing our
 * duplicate, the last one, ends the connection, so its users get ENOTCONN instead of waiting
 * forever. */
static void drop_ended(double timeout) {
  double t = now();
  for (size_t i = n_held; i-- > 0;) {
    struct pollfd connection = {.fd = held[i].fd, .events = 0};
    if (poll(&connection, 1, 0) == 1 && (connection.revents & (POLLERR | POLLHUP | POLLNVAL))) {
      logf_("connection of %s ended: dropped", held[i].name);
      forget(i);
      continue;
    }
    if (timeout < 0) continue;
    struct pollfd gone = {.fd = held[i].owner, .events = POLLIN};
    if (held[i].owner >= 0 && poll(&gone, 1, 0) == 1) {
      close(held[i].owner);
      held[i].owner = -1;
      held[i].orphaned_since = t;
    }
    if (held[i].owner < 0 && held[i].orphaned_since > 0 && t - held[i].orphaned_since >= timeout) {
      logf_("nobody took %s over within %g s of its server's exit: dropped (its users get ENOTCONN)", held[i].name, timeout);
      forget(i);
    }
  }
}

/* ---- requests ---- */

static void send_reply(int c, const char *data, size_t len, int fd) {
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {(void *)data, len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  /* A client that went away or stopped reading loses its reply; the keeper never waits on it. */
  sendmsg(c, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void send_error(int c, const char *reason) {
  char out[256];
  int n = snprintf(out, sizeof out, "E%s", reason);
  send_reply(c, out, (size_t)n, -1);
}

static bool supervisor;

/* Handles one received request; closes every descriptor it does not keep. */
static void handle(int c, size_t len, bool truncated, int *fds, int nfds) {
  if (truncated) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return send_error(c, "request too large or too many descriptors");
  }
  const char *name = request + 1;
  const char *nul = len > 1 ? memchr(name, 0, len - 1) : NULL;
  const char *problem = NULL;
  char op = len ? request[0] : 0;
  if (!nul) problem = "malformed request: op byte then a NUL-terminated name";
  else if (nul == name && op != 'L' && op != 'T') problem = "empty name";
  else if (nul - name > NAME_MAX_LEN) problem = "name longer than 4096 bytes";
  else if (op == 'P' && nfds != 1) problem = "put needs exactly one descriptor";
  else if (op != 'P' && nfds != 0) problem = "only put carries a descriptor";
  else if (!strchr("PGDLT", op)) problem = "unknown op (want P, G, D, L or T)";
  else if (op == 'T' && !supervisor) problem = "T needs a supervisor (a keeper started with a command)";
  if (problem) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return send_error(c, problem);
  }
  const char *payload = nul + 1;
  size_t payload_len = len - (size_t)(payload - request);
  struct held *h = find(name);
  switch (op) {
  case 'P':
    if (payload_len > PAYLOAD_MAX) {
      close(fds[0]);
      return send_error(c, "payload larger than 64 KiB");
    }
    if (!store(name, payload, payload_len, fds[0])) {
      close(fds[0]);
      return send_error(c, "out of memory");
    }
    own(find(name), c);
    return send_reply(c, "K", 1, -1);
  case 'G':
    if (!h) return send_reply(c, "N", 1, -1);
    own(h, c);
    reply[0] = 'Y';
    memcpy(reply + 1, h->payload, h->payload_len);
    return send_reply(c, reply, 1 + h->payload_len, h->fd);
  case 'D':
    if (h) forget((size_t)(h - held));
    return send_reply(c, "K", 1, -1);
  case 'T':
    retired = true;
    if (!child) return send_reply(c, "K", 1, -1);
    if (retire_client < 0) {
      logf_("retiring: passing SIGTERM to pid %d, not restarting it", (int)child);
      kill(child, SIGTERM);
      retire_deadline = now() + 5;
    }
    retire_client = c; /* answered when the command has exited */
    return;
  default: { /* 'L' */
    size_t n = 1;
    reply[0] = 'Y';
    for (size_t i = 0; i < n_held; i++) {
      size_t l = strlen(held[i].name) + 1;
      if (n + l > REPLY_MAX) return send_error(c, "list longer than 256 KiB");
      memcpy(reply + n, held[i].name, l);
      n += l;
    }
    return send_reply(c, reply, n, -1);
  }
  }
}

/* Reads one request from client c; false when the client is gone. */
static bool serve(int c) {
  char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct iovec iov = {request, REQUEST_MAX + 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(c, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  int fds[MAX_FDS], nfds = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
  }
  if (n == 0 && nfds == 0) return false; /* EOF (an empty datagram carries no op either) */
  bool truncated = (size_t)n > REQUEST_MAX || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
  handle(c, truncated ? 0 : (size_t)n, truncated, fds, nfds);
  return true;
}

/* ---- the socket ---- */

static void die(const char *what) {
  logf_("%s: %s", what, strerror(errno));
  exit(1);
}

/* Binds a SOCK_SEQPACKET listener at path under a temporary name and renames it into place. */
static int bind_at(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  char tmp[sizeof a.sun_path + 32];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
  strcpy(a.sun_path, tmp);
  unlink(tmp);
  int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (l < 0) die("socket");
  mode_t old = umask(0177);
  int bound = bind(l, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (bound < 0) die("binding the socket");
  if (listen(l, 64) < 0) die("listen");
  if (rename(tmp, path) < 0) {
    unlink(tmp);
    die("moving the socket into place");
  }
  return l;
}

static int lock_file(const char *path) {
  char lock[PATH_MAX];
  snprintf(lock, sizeof lock, "%s.lock", path);
  int lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lk < 0) die("opening the lock file");
  return lk;
}

/* The primary's lock (held for the process's life once taken) and, for a successor, the path it serves until then. */
static int primary_lock = -1, next_lock = -1;
static char serving[PATH_MAX];

static int listen_at(const char *path, bool supervising) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  char dir_buf[PATH_MAX];
  if (strlen(path) + 29 >= sizeof a.sun_path) {
    logf_("socket path %s is too long (at most %zu bytes)", path, sizeof a.sun_path - 30);
    exit(2);
  }
  snprintf(dir_buf, sizeof dir_buf, "%s", path);
  const char *dir = dirname(dir_buf);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) die("creating the socket's directory");
  primary_lock = lock_file(path);
  if (flock(primary_lock, LOCK_EX | LOCK_NB) == 0) {
    snprintf(serving, sizeof serving, "%s", path);
    return bind_at(path);
  }
  if (errno != EWOULDBLOCK) die("locking the lock file");
  if (!supervising) {
    logf_("another keeper already serves %s", path);
    exit(0);
  }
  snprintf(serving, sizeof serving, "%s.next", path);
  next_lock = lock_file(serving);
  if (flock(next_lock, LOCK_EX | LOCK_NB) < 0) {
    logf_("a keeper serves %s and a successor %s already", path, serving);
    exit(1);
  }
  logf_("a keeper serves %s: serving %s as its successor", path, serving);
  return bind_at(serving);
}

/* A successor becomes the primary once its predecessor has exited (its lock is free). */
static void try_promotion(const char *path) {
  if (strcmp(serving, path) == 0 || flock(primary_lock, LOCK_EX | LOCK_NB) < 0) return;
  if (rename(serving, path) < 0) die("moving the socket to the primary path");
  logf_("predecessor gone: now serving %s", path);
  snprintf(serving, sizeof serving, "%s", path);
  close(next_lock); /* the next upgrade's keeper is the successor now */
  next_lock = -1;
  setenv("LHB_KEEPER_SOCKET", path, 1);
  unsetenv("LHB_KEEPER_PREDECESSOR");
}

/* ---- supervisor ---- */

static double child_started;
static bool terminating;
static sigset_t original_mask;

static void start_child(char **cmd) {
  child_started = now();
  child = fork();
  if (child < 0) {
    logf_("fork: %s", strerror(errno));
    child = 0;
    return;
  }
  if (child == 0) {
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &original_mask, NULL);
    execvp(cmd[0], cmd);
    fprintf(stderr, "keeper: exec %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  logf_("started %s (pid %d)", cmd[0], (int)child);
}

static int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void usage(void) {
  fprintf(stderr, "usage: lighthouse-bridge-keeper --socket PATH [--idle-exit SECONDS] [-- COMMAND ARGS...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  double idle_exit = -1, orphan_timeout = -1;
  char **cmd = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) path = argv[++i];
    else if (strcmp(argv[i], "--idle-exit") == 0 && i + 1 < argc) {
      char *end;
      idle_exit = strtod(argv[++i], &end);
      if (*end || idle_exit < 0) usage();
    } else if (strcmp(argv[i], "--orphan-timeout") == 0 && i + 1 < argc) {
      char *end;
      orphan_timeout = strtod(argv[++i], &end);
      if (*end || orphan_timeout < 0) usage();
    } else if (strcmp(argv[i], "--") == 0 && i + 1 < argc) {
      cmd = &argv[i + 1];
      break;
    } else usage();
  }
  if (!path || !*path) usage();
  if (cmd && idle_exit >= 0) {
    logf_("--idle-exit and a command exclude each other: a supervisor lives as long as its command");
    exit(2);
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, &original_mask);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  supervisor = cmd != NULL;
  int l = listen_at(path, supervisor);
  if (cmd && setenv("LHB_KEEPER_SOCKET", serving, 1) < 0) die("setenv");
  if (cmd && strcmp(serving, path) != 0 && setenv("LHB_KEEPER_PREDECESSOR", path, 1) < 0) die("setenv");
  logf_("serving %s", serving);
  double empty_since = now(), restart_at = 0, backoff = 0.1;
  int last_status = 0;
  if (cmd) start_child(cmd);
  struct pollfd *pfd = NULL;
  for (;;) {
    drop_ended(orphan_timeout);
    /* The idle clock starts when the last descriptor goes, dropped here or by a request below, and
     * starts again with every connection and request while nothing is held. */
    if (n_held == 0 && empty_since == 0) empty_since = now();
    if (n_held) empty_since = 0;
    /* 0: signals, 1: listener, then clients */
    size_t n = 2 + n_clients;
    struct pollfd *grown = realloc(pfd, n * sizeof *pfd);
    if (!grown) die("realloc");
    pfd = grown;
    pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = n_clients < MAX_CLIENTS ? l : -1, .events = POLLIN};
    for (size_t i = 0; i < n_clients; i++) pfd[2 + i] = (struct pollfd){.fd = clients[i], .events = POLLIN};
    double t = now(), wait = INFINITY;
    if (idle_exit >= 0 && n_held == 0) wait = empty_since + idle_exit - t;
    if (n_held > 0 && wait > 0.25) wait = 0.25; /* drop_ended looks every 0.25 s */
    if (cmd && !child && !terminating && !retired && wait > restart_at - t) wait = restart_at - t;
    if (strcmp(serving, path) != 0 && wait > 0.1) wait = 0.1; /* a successor looks for its promotion */
    if (retire_client >= 0 && child && wait > retire_deadline - t) wait = retire_deadline - t;
    try_promotion(path);
    if (retire_client >= 0 && child && t >= retire_deadline) {
      logf_("pid %d did not exit within 5 s of SIGTERM: SIGKILL", (int)child);
      kill(child, SIGKILL);
      retire_deadline = t + 5;
    }
    if (wait <= 0 && !(cmd && (child || terminating || retired))) {
      if (cmd) {
        start_child(cmd);
        if (!child) restart_at = now() + 5;
        continue;
      }
      logf_("nothing held for %g s: exiting", idle_exit);
      unlink(serving);
      return 0;
    }
    if (poll(pfd, n, isinf(wait) ? -1 : (int)(wait * 1000) + 1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (size_t i = n_clients; i-- > 0;) {
      short re = pfd[2 + i].revents;
      if (re && n_held == 0) empty_since = now();
      if (re && !serve(clients[i])) {
        if (clients[i] == retire_client) retire_client = -1;
        close(clients[i]);
        clients[i] = clients[--n_clients];
      }
    }
    if (pfd[1].revents) {
      int c = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) clients[n_clients++] = c;
      if (c >= 0 && n_held == 0) empty_since = now();
    }
    if (pfd[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) continue;
        if (!cmd) {
          logf_("signal %u: exiting", si.ssi_signo);
          unlink(serving);
          return 0;
        }
        terminating = true;
        if (!child) {
          unlink(serving);
          return last_status;
        }
        logf_("signal %u: passing it to pid %d", si.ssi_signo, (int)child);
        kill(child, (int)si.ssi_signo);
      }
      int status;
      pid_t p;
      while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != child) continue;
        child = 0;
        last_status = exit_code(status);
        if (retired) {
          logf_("command exited (%d): retired, holding the descriptors until the end", last_status);
          if (retire_client >= 0) send_reply(retire_client, "K", 1, -1);
          retire_client = -1;
          if (terminating) {
            unlink(serving);
            return last_status;
          }
          continue;
        }
        if (terminating) {
          logf_("command exited (%d) after the signal: exiting", last_status);
          unlink(serving);
          return last_status;
        }
        double ran = now() - child_started;
        if (ran >= 2) backoff = 0.1;
        double delay = ran >= 2 ? 0 : backoff;
        if (ran < 2) backoff = backoff * 2 > 5 ? 5 : backoff * 2;
        logf_("command exited (%d) after %.1f s: restarting in %.0f ms", last_status, ran, delay * 1000);
        restart_at = now() + delay;
      }
    }
  }
}
