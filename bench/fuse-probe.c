/* The syscall side of bench/fuse.mjs: tight loops timed with CLOCK_MONOTONIC, one JSON line out.
 * C so the measuring process adds nothing to what the filesystem costs. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *op, long long *v, int n) {
  qsort(v, n, sizeof *v, cmp);
  printf("{\"op\":\"%s\",\"n\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f}\n", op, n, v[n / 2] / 1e3,
         v[(int)(n * 0.99)] / 1e3, v[(int)(n * 0.999)] / 1e3, v[n - 1] / 1e3);
}

static void fail(const char *what, const char *path) {
  perror(what);
  fprintf(stderr, "  path: %s\n", path);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: fuse-probe stat|read|create|create-distinct|fsync|readdir|seqwrite|seqread PATH N [FIRST]\n");
    return 2;
  }
  const char *mode = argv[1], *path = argv[2];
  int n = atoi(argv[3]);
  if (n < 1) {
    fprintf(stderr, "fuse-probe: N must be at least 1, not %s\n", argv[3]);
    return 2;
  }
  /* create-distinct: the number the first file's content starts with, so that calls on one store
   * can go on where the last stopped instead of storing content it already has. */
  int first = argc > 4 ? atoi(argv[4]) : 0;
  static char buf[131072];
  long long *v = calloc(n, sizeof *v);
  if (!strcmp(mode, "stat")) {
    struct stat st;
    if (stat(path, &st)) fail("stat", path);
    for (int i = 0; i < n; i++) {
      long long t = now_ns();
      if (stat(path, &st)) fail("stat", path);
      v[i] = now_ns() - t;
    }
    report("stat", v, n);
  } else if (!strcmp(mode, "read")) {
    for (int i = 0; i < n; i++) {
      long long t = now_ns();
      int fd = open(path, O_RDONLY);
      if (fd < 0) fail("open", path);
      if (read(fd, buf, 4096) != 4096) fail("read", path);
      close(fd);
      v[i] = now_ns() - t;
    }
    report("open_read4k_close", v, n);
  } else if (!strcmp(mode, "create") || !strcmp(mode, "create-distinct")) {
    /* create-distinct: each file's content starts with its number (from FIRST), so no two store one blob. */
    int distinct = !strcmp(mode, "create-distinct");
    char name[4096];
    memset(buf, 'x', 100);
    for (int i = 0; i < n; i++) {
      snprintf(name, sizeof name, "%s/f%06d", path, i);
      if (distinct) buf[snprintf(buf, 100, "%d", first + i)] = 'x';
      long long t = now_ns();
      int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0) fail("create", name);
      if (write(fd, buf, 100) != 100) fail("write", name);
      if (close(fd)) fail("close", name);
      v[i] = now_ns() - t;
    }
    report("create_write_close", v, n);
  } else if (!strcmp(mode, "fsync")) {
    /* create + write 100 B, then only the fsync is timed, then close */
    char name[4096];
    memset(buf, 'y', 100);
    for (int i = 0; i < n; i++) {
      snprintf(name, sizeof name, "%s/s%06d", path, i);
      int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0) fail("create", name);
      if (write(fd, buf, 100) != 100) fail("write", name);
      long long t = now_ns();
      if (fsync(fd)) fail("fsync", name);
      v[i] = now_ns() - t;
      if (close(fd)) fail("close", name);
    }
    report("fsync_after_write", v, n);
  } else if (!strcmp(mode, "readdir")) {
    int entries = 0;
    for (int i = 0; i < n; i++) {
      long long t = now_ns();
      DIR *d = opendir(path);
      if (!d) fail("opendir", path);
      entries = 0;
      while (readdir(d)) entries++;
      closedir(d);
      v[i] = now_ns() - t;
    }
    qsort(v, n, sizeof *v, cmp);
    printf("{\"op\":\"readdir\",\"entries\":%d,\"n\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", entries, n, v[n / 2] / 1e3, v[(int)(n * 0.99)] / 1e3);
  } else if (!strcmp(mode, "seqwrite") || !strcmp(mode, "seqread")) {
    int writing = !strcmp(mode, "seqwrite");
    long long total = (long long)n * 1024 * 1024, done = 0, t = now_ns();
    int fd = writing ? open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644) : open(path, O_RDONLY);
    if (fd < 0) fail("open", path);
    memset(buf, 'y', sizeof buf);
    while (done < total) {
      ssize_t r = writing ? write(fd, buf, sizeof buf) : read(fd, buf, sizeof buf);
      if (r <= 0) fail(writing ? "write" : "read", path);
      done += r;
    }
    if (close(fd)) fail("close", path);
    double s = (now_ns() - t) / 1e9;
    printf("{\"op\":\"%s\",\"mib\":%d,\"seconds\":%.3f,\"mib_per_s\":%.1f}\n", mode, n, s, n / s);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
