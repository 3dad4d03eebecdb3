/*
 * Seed 001's chroot without chdir: chroot(argv[1]) and nothing else, so the cwd stays at the
 * old root, outside the new one. It logs what the raw getcwd(2) says (the syscall: glibc's
 * getcwd() would refuse an "(unreachable)" answer) to argv[2] now, and again on each SIGUSR1.
 *
 *   nochdir /newroot /tmp/nochdir.log &
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t asked;

static void on_usr1(int sig) {
  (void)sig;
  asked = 1;
}

static void say(FILE *log, const char *tag) {
  char buf[4096];
  long r = syscall(SYS_getcwd, buf, sizeof buf);
  if (r < 0)
    fprintf(log, "%s error %s\n", tag, strerror(errno));
  else
    fprintf(log, "%s %s\n", tag, buf);
  fflush(log);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: nochdir NEWROOT LOGFILE\n");
    return 2;
  }
  FILE *log = fopen(argv[2], "a");
  if (!log) {
    fprintf(stderr, "nochdir: %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, &old);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  if (chroot(argv[1]) != 0) {
    fprintf(log, "chroot error %s\n", strerror(errno));
    fflush(log);
    return 1;
  }
  say(log, "chroot");
  for (;;) {
    /* SIGUSR1 is blocked except inside sigsuspend: no request is lost between the check and the wait. */
    while (!asked) sigsuspend(&old);
    asked = 0;
    say(log, "usr1");
  }
}
