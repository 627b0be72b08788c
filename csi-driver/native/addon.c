/* The native pieces our TypeScript FUSE server stands on (ADR 0083): mount(2)/umount2(2),
 * fusermount3's descriptor hand-over for non-root, reading each /dev/fuse connection on the event
 * loop, and a client for the keeper's socket. Everything about the FUSE protocol itself lives in TypeScript;
 * this file only moves bytes and descriptors, so it stays small. Loaded by src/fuse/kernel/native.ts. */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_FDS 16
#define KEEPER_REPLY_MAX (256 * 1024)
/* The kernel refuses reads into less than FUSE_MIN_READ_BUFFER; more than 16 MiB is a mistake. */
#define PUMP_MIN_BUFFER 8192
#define PUMP_MAX_BUFFER (16 * 1024 * 1024)

/* ---- errors: an Error whose `code` is the errno name, as Node's own fs errors have ---- */

static napi_value errno_error(napi_env env, int err, const char *fmt, ...) {
  char what[512], msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *name = strerrorname_np(err);
  char fallback[16];
  if (!name) { snprintf(fallback, sizeof fallback, "E%d", err); name = fallback; }
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), name);
  napi_value code, text, error, num;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
  return NULL;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ---- argument helpers: each returns false after throwing a TypeError ---- */

static bool arg_string(napi_env env, napi_value v, const char *what, char **out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    type_error(env, what);
    return false;
  }
  *out = malloc(len + 1);
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  if (strlen(*out) != len) { /* an embedded NUL would silently cut the path short */
    free(*out);
    type_error(env, what);
    return false;
  }
  return true;
}

static bool arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype t;
  double d;
  napi_typeof(env, v, &t);
  /* Integers only: int64 conversion truncates, so 1.5 would quietly be 1. The range test comes first
   * because it also refuses NaN and infinities, whose conversion is undefined. */
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || !(d >= (double)min && d <= (double)max) ||
      d != (double)(int64_t)d || napi_get_value_int64(env, v, out) != napi_ok) {
    type_error(env, what);
    return false;
  }
  return true;
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, void **data) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, data);
  if (argc < want) {
    type_error(env, "too few arguments");
    return false;
  }
  return true;
}

/* ---- mount(source, target, fstype, flags, data) / umount(target, flags) ---- */

static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv, NULL)) return NULL;
  char *s[4] = {0};
  int64_t flags;
  const char *names[4] = {"source must be a string", "target must be a string", "fstype must be a string", NULL};
  napi_value result = NULL;
  for (int i = 0; i < 3; i++) if (!arg_string(env, argv[i], names[i], &s[i])) goto out;
  if (!arg_int(env, argv[3], "flags must be a non-negative integer", 0, 0xffffffffLL, &flags)) goto out;
  if (!arg_string(env, argv[4], "data must be a string", &s[3])) goto out;
  if (mount(s[0], s[1], s[2], (unsigned long)flags, s[3]) < 0)
    errno_error(env, errno, "mount of %s (type %s) on %s failed", s[0], s[2], s[1]);
out:
  for (int i = 0; i < 4; i++) free(s[i]);
  return result;
}

static napi_value js_umount(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  char *target;
  int64_t flags;
  if (!arg_string(env, argv[0], "target must be a string", &target)) return NULL;
  if (arg_int(env, argv[1], "flags must be a non-negative integer", 0, 0xffffffffLL, &flags) &&
      umount2(target, (int)flags) < 0)
    errno_error(env, errno, "unmount of %s failed", target);
  free(target);
  return NULL;
}

/* ---- fusermountMount(target, options): the setuid helper opens /dev/fuse, mounts, and sends the
 * descriptor back over the socket named by _FUSE_COMMFD (one byte of data + SCM_RIGHTS). posix_spawn,
 * not fork: this process has threads, and a forked child may only call async-signal-safe functions. */

static int recv_fds(int s, void *buf, size_t cap, int *fds, int *nfds, int flags, bool *truncated) {
  char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct iovec iov = {buf, cap};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC | flags);
  *nfds = 0;
  if (n < 0) return -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count && *nfds < MAX_FDS; i++) memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  *truncated = (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return (int)n;
}

static void close_all(const int *fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
}

static napi_value js_fusermount_mount(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  if (!get_args(env, info, 2, argv, NULL)) return NULL;
  char *target = NULL, *options = NULL;
  if (!arg_string(env, argv[0], "target must be a string", &target) ||
      !arg_string(env, argv[1], "options must be a string", &options)) goto out;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    errno_error(env, errno, "socketpair for fusermount3 failed");
    goto out;
  }
  /* dup2 onto another number clears close-on-exec in the child only. */
  int child_fd = sv[1] == 3 ? 4 : 3;
  char commfd[32];
  snprintf(commfd, sizeof commfd, "_FUSE_COMMFD=%d", child_fd);
  size_t n_env = 0;
  while (environ[n_env]) n_env++;
  char **envp = calloc(n_env + 2, sizeof *envp);
  size_t j = 0;
  for (size_t i = 0; i < n_env; i++)
    if (strncmp(environ[i], "_FUSE_COMMFD=", 13) != 0) envp[j++] = environ[i];
  envp[j++] = commfd;
  char *args[] = {"fusermount3", "-o", options, "--", target, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], child_fd);
  pid_t pid;
  int err = posix_spawnp(&pid, "fusermount3", &fa, NULL, args, envp);
  posix_spawn_file_actions_destroy(&fa);
  free(envp);
  close(sv[1]);
  if (err) {
    close(sv[0]);
    errno_error(env, err, "running fusermount3 to mount %s failed", target);
    goto out;
  }
  char byte;
  int fds[MAX_FDS], nfds;
  bool truncated;
  int n;
  do n = recv_fds(sv[0], &byte, 1, fds, &nfds, MSG_WAITALL, &truncated);
  while (n < 0 && errno == EINTR);
  int recv_err = errno;
  close(sv[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (n > 0 && nfds == 1) {
    napi_create_int32(env, fds[0], &result);
    goto out;
  }
  close_all(fds, nfds);
  if (n < 0) errno_error(env, recv_err, "receiving the /dev/fuse descriptor from fusermount3 for %s failed", target);
  else if (WIFEXITED(status))
    errno_error(env, EIO, "fusermount3 -o %s -- %s failed with exit status %d (see its stderr)", options, target, WEXITSTATUS(status));
  else
    errno_error(env, EIO, "fusermount3 -o %s -- %s was killed by signal %d", options, target, WTERMSIG(status));
out:
  free(target);
  free(options);
  return result;
}

/* ---- startPump(fd, bufferSize, onRequest, onEnd) ----
 * The JavaScript thread reads /dev/fuse itself when the event loop's epoll says it is readable
 * (libuv's uv_poll on the non-blocking descriptor). A reader thread handing requests over cost a
 * thread wake-up per request on top of the kernel's: with four requests per small file's
 * create+write+close, 7-14% of its median (bench/RESULTS.md). Each wake-up reads what is
 * queued, at most PUMP_BATCH requests, so other work on the loop still gets its turn. onEnd
 * comes once, from the handle's close callback, after the last onRequest. The state is freed
 * when both the libuv handle and the returned object are gone: stop() may be called at any time. */

#define PUMP_BATCH 64

struct pump {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_request, on_end;
  napi_async_context async;
  int fd;
  int end_err;         /* onEnd's argument: the errno that ended the connection, 0 for stop() */
  int refs;            /* the libuv handle + the JS object returned by startPump + its stop function */
  size_t buffer_size;
  char buf[];
};

static void pump_unref(struct pump *p) {
  if (--p->refs > 0) return;
  napi_delete_reference(p->env, p->on_request);
  napi_delete_reference(p->env, p->on_end);
  napi_async_destroy(p->env, p->async);
  free(p);
}

/* Calls a JavaScript callback from the loop as Node calls its own: microtasks and nextTicks run
 * after it, and a throw becomes an uncaught exception rather than vanishing. */
static void pump_call(struct pump *p, napi_ref ref, napi_value arg) {
  napi_env env = p->env;
  napi_value global, fn, exception;
  napi_get_global(env, &global);  /* napi_make_callback wants an object as `this` */
  napi_get_reference_value(env, ref, &fn);
  napi_make_callback(env, p->async, global, fn, 1, &arg, NULL);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok)
    napi_fatal_exception(env, exception);
}

static void pump_closed(uv_handle_t *h) {
  struct pump *p = h->data;
  napi_handle_scope scope;
  napi_value arg;
  napi_open_handle_scope(p->env, &scope);
  napi_create_int32(p->env, p->end_err, &arg);
  pump_call(p, p->on_end, arg);
  napi_close_handle_scope(p->env, scope);
  pump_unref(p);
}

/* The handle closing (stop() or the end) means no more onRequest. */
static bool pump_closing(struct pump *p) {
  return uv_is_closing((uv_handle_t *)&p->poll);
}

/* A pump that never started: nothing was delivered, so nothing ends (no onEnd). */
static void pump_discarded(uv_handle_t *h) {
  pump_unref(h->data);
}

static void pump_close(struct pump *p, int err) {
  if (pump_closing(p)) return;
  p->end_err = err;
  uv_poll_stop(&p->poll);
  uv_close((uv_handle_t *)&p->poll, pump_closed);
}

static void pump_read(struct pump *p) {
  for (int i = 0; i < PUMP_BATCH && !pump_closing(p); i++) {
    ssize_t n = read(p->fd, p->buf, p->buffer_size);
    if (n < 0) {
      if (errno == EAGAIN) return;
      /* ENOENT: the request was interrupted before we read it. */
      if (errno == EINTR || errno == ENOENT) continue;
      pump_close(p, errno);  /* ENODEV: unmounted or aborted */
      return;
    }
    if (n == 0) { pump_close(p, ENODEV); return; }
    napi_handle_scope scope;
    napi_value arg;
    napi_open_handle_scope(p->env, &scope);
    if (napi_create_buffer_copy(p->env, (size_t)n, p->buf, NULL, &arg) == napi_ok) pump_call(p, p->on_request, arg);
    else pump_close(p, ENOMEM);
    napi_close_handle_scope(p->env, scope);
  }
}

static void pump_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  struct pump *p = h->data;
  pump_read(p);
  /* An aborted or unmounted connection polls as EPOLLERR, which libuv reports as EBADF and stops
   * watching: the read above ended the pump with the kernel's own errno (ENODEV) if it could. */
  if (status < 0) pump_close(p, -status);
}

static napi_value js_pump_stop(napi_env env, napi_callback_info info) {
  struct pump *p;
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&p);
  pump_close(p, 0);
  return NULL;
}

static void pump_object_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pump_unref(data);
}

static napi_value js_start_pump(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  int64_t fd, size;
  napi_valuetype t2, t3;
  if (!arg_int(env, argv[0], "fd must be a descriptor number", 0, 0x7fffffff, &fd)) return NULL;
  if (!arg_int(env, argv[1], "bufferSize must be an integer from 8192 to 16 MiB", PUMP_MIN_BUFFER, PUMP_MAX_BUFFER, &size)) return NULL;
  napi_typeof(env, argv[2], &t2);
  napi_typeof(env, argv[3], &t3);
  if (t2 != napi_function || t3 != napi_function) return type_error(env, "onRequest and onEnd must be functions");
  int fl = fcntl((int)fd, F_GETFL);
  if (fl < 0 || fcntl((int)fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return errno_error(env, errno, "making FUSE descriptor %d non-blocking failed", (int)fd);
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return errno_error(env, EINVAL, "no event loop to read FUSE descriptor %d on", (int)fd);
  struct pump *p = calloc(1, sizeof *p + (size_t)size);
  if (!p) return errno_error(env, ENOMEM, "no memory for the FUSE request buffer");
  int err = uv_poll_init(loop, &p->poll, (int)fd);
  if (err) {
    free(p);
    return errno_error(env, -err, "watching FUSE descriptor %d failed", (int)fd);
  }
  p->poll.data = p;
  p->env = env;
  p->fd = (int)fd;
  p->buffer_size = (size_t)size;
  p->refs = 3;
  napi_value name, obj, stop;
  napi_create_string_utf8(env, "lighthouse-bridge-fuse-pump", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->async);
  napi_create_reference(env, argv[2], 1, &p->on_request);
  napi_create_reference(env, argv[3], 1, &p->on_end);
  err = uv_poll_start(&p->poll, UV_READABLE, pump_readable);
  if (err) {
    p->refs = 1;  /* the object and function below are never made: the close callback frees p */
    uv_close((uv_handle_t *)&p->poll, pump_discarded);
    return errno_error(env, -err, "watching FUSE descriptor %d failed", (int)fd);
  }
  napi_create_object(env, &obj);
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, js_pump_stop, p, &stop);
  napi_set_named_property(env, obj, "stop", stop);
  /* Both hold p: a `stop` kept apart from its object must not outlive the state it points to. */
  napi_add_finalizer(env, obj, p, pump_object_finalize, NULL, NULL);
  napi_add_finalizer(env, stop, p, pump_object_finalize, NULL, NULL);
  return obj;
}

/* ---- keeperCall(socketPath, message, fds, timeoutMs): one request, one reply ---- */

static napi_value js_keeper_call(napi_env env, napi_callback_info info) {
  napi_value argv[4], result = NULL;
  if (!get_args(env, info, 4, argv, NULL)) return NULL;
  char *path = NULL;
  void *msg;
  size_t msg_len;
  bool is_buf, is_arr;
  uint32_t nfds_in;
  int64_t timeout;
  int fds_in[MAX_FDS];
  char *reply = NULL;
  int s = -1;
  if (!arg_string(env, argv[0], "socketPath must be a string", &path)) goto out;
  napi_is_buffer(env, argv[1], &is_buf);
  if (!is_buf) { type_error(env, "message must be a Buffer"); goto out; }
  napi_get_buffer_info(env, argv[1], &msg, &msg_len);
  napi_is_array(env, argv[2], &is_arr);
  if (!is_arr) { type_error(env, "fds must be an array of descriptor numbers"); goto out; }
  napi_get_array_length(env, argv[2], &nfds_in);
  if (nfds_in > MAX_FDS) { type_error(env, "at most 16 descriptors per message"); goto out; }
  for (uint32_t i = 0; i < nfds_in; i++) {
    napi_value v;
    int64_t fd;
    napi_get_element(env, argv[2], i, &v);
    if (!arg_int(env, v, "fds must be an array of descriptor numbers", 0, 0x7fffffff, &fd)) goto out;
    fds_in[i] = (int)fd;
  }
  if (!arg_int(env, argv[3], "timeoutMs must be a positive integer", 1, 86400000, &timeout)) goto out;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) { errno_error(env, ENAMETOOLONG, "keeper socket path %s", path); goto out; }
  strcpy(addr.sun_path, path);
  s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) { errno_error(env, errno, "socket for the keeper failed"); goto out; }
  struct timeval tv = {.tv_sec = timeout / 1000, .tv_usec = (timeout % 1000) * 1000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) { errno_error(env, errno, "connecting to the keeper at %s failed", path); goto out; }
  char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)] = {0};
  struct iovec iov = {msg, msg_len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds_in) {
    m.msg_control = cbuf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds_in);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds_in);
    memcpy(CMSG_DATA(c), fds_in, sizeof(int) * nfds_in);
  }
  ssize_t sent;
  do sent = sendmsg(s, &m, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    int err = errno == EAGAIN ? ETIMEDOUT : errno;
    errno_error(env, err, "sending to the keeper at %s failed", path);
    goto out;
  }
  reply = malloc(KEEPER_REPLY_MAX);
  int fds[MAX_FDS], nfds;
  bool truncated;
  int n;
  do n = recv_fds(s, reply, KEEPER_REPLY_MAX, fds, &nfds, 0, &truncated);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno == EAGAIN ? ETIMEDOUT : errno;
    errno_error(env, err, "waiting for the keeper's reply at %s failed", path);
    goto out;
  }
  if (n == 0 || truncated) {
    close_all(fds, nfds);
    errno_error(env, n == 0 ? ECONNRESET : EMSGSIZE, n == 0 ? "the keeper at %s closed without a reply" : "the keeper's reply at %s was too large", path);
    goto out;
  }
  napi_value buf, arr, v;
  napi_create_buffer_copy(env, (size_t)n, reply, NULL, &buf);
  napi_create_array_with_length(env, (size_t)nfds, &arr);
  for (int i = 0; i < nfds; i++) {
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, arr, (uint32_t)i, v);
  }
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "reply", buf);
  napi_set_named_property(env, result, "fds", arr);
out:
  if (s >= 0) close(s);
  free(reply);
  free(path);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount", NULL, js_umount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fusermountMount", NULL, js_fusermount_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startPump", NULL, js_start_pump, NULL, NULL, NULL, napi_enumerable, NULL},
      {"keeperCall", NULL, js_keeper_call, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
