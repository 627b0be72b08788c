/* The pod sandbox's process (containerd's sandbox_image): it only has to exist, holding the pod's
 * namespaces, until the runtime stops it. As PID 1 of the pod's PID namespace it inherits every
 * orphan there, so it reaps them rather than let zombies pile up. Exits 0 on SIGINT or SIGTERM:
 * a stop is the normal end, not a failure. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  int saved = errno; /* the handler can interrupt anything; leave errno as found */
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char **argv) {
  static const char usage[] = "pause: takes no arguments; sleeps until SIGINT or SIGTERM\n";
  struct sigaction on_stop = {.sa_handler = stop}, on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  (void)argv;
  if (argc > 1) {
    (void)!write(STDERR_FILENO, usage, sizeof usage - 1);
    return 2;
  }
  if (sigaction(SIGINT, &on_stop, NULL) || sigaction(SIGTERM, &on_stop, NULL) || sigaction(SIGCHLD, &on_child, NULL))
    return 1;
  for (;;)
    pause();
}
