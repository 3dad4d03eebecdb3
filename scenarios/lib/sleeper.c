/*
 * The witness: a process whose binary only the initramfs has (/bin/sleeper), so its
 * /proc/PID/exe shows what became of the initramfs after a root switch. `sleeper SECONDS`.
 * Static, so that it brings no libraries into the image (coreutils' sleep brought glibc:
 * 2.4 MB more to unpack at every boot, ~0.2 s under TCG).
 */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  unsigned left = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100000;
  while (left > 0) left = sleep(left);
  return 0;
}
