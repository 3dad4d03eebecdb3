/*
 * rootprobe's guest probe. A scenario's guest scripts call it at each point of interest:
 *
 *   probe STAGE [-f PATH]... [-c NAME COMMAND]... [-v NAME=VALUE]... [-o FILE]
 *
 * It snapshots the mount tree (/proc/self/mountinfo, /proc/1/mountinfo) and every process
 * (comm, cmdline, ppid, the text of its exe, cwd and root links and of its open fds, with
 * decorations such as " (deleted)" and "(unreachable)" intact), packs the snapshot as a newc
 * cpio archive, gzips it and sends it on the result channel (ttyS1) in a frame that carries the
 * stage name, the byte length and the sha256 (docs/protocol.md). On machines with one UART the
 * result channel is a virtio-serial port found by its name (open_vport).
 *
 *   -f PATH            copy a guest file into the snapshot (files/PATH)
 *   -c NAME COMMAND    run COMMAND (sh -c) after the snapshot is taken; keep its output and status
 *   -v NAME=VALUE      record a value (vars/NAME)
 *   -o FILE            write the frame to FILE ("-": stdout) instead of the result channel
 *
 * A static binary built on the host (harness/guest/toolkit.ts), so that it works after a root
 * switch onto a root that has no /dev, no shell and no libc of its own. Under TCG every fork
 * and exec costs milliseconds and the shell probe it replaces spent half a second per stage;
 * this one reads everything with plain system calls and builds the archive in its own memory:
 * it writes nothing to any file system and mounts nothing, except a proc of its own (on
 * /.rootprobe/proc, for the duration, said in meta) when the guest has none mounted, and, to
 * reach a virtio result port after the snapshot, a sysfs and a tmpfs of its own (open_vport).
 *
 * Exit status: 0 sent; 64 usage; 70 internal; 74 the frame could not be written.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <zlib.h>

#define PF_KTHREAD 0x00200000u
#define MAX_FILE (32u << 20) /* -f and -c output: at most this much is kept */

static const char *toolkit = "/.rootprobe";

static void die(int code, const char *fmt, ...) {
  va_list ap;
  fputs("rootprobe probe: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(code);
}

/* ---- growable buffers ------------------------------------------------------------------- */

struct buf {
  char *p;
  size_t len, cap;
};

static void reserve(struct buf *b, size_t more) {
  if (b->len + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) die(70, "out of memory (%zu bytes)", cap);
  b->p = p;
  b->cap = cap;
}

static void put(struct buf *b, const void *data, size_t n) {
  reserve(b, n);
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void putf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  reserve(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Read a whole file (proc files have no size: read until EOF). 0 on success. */
static int slurp(const char *path, struct buf *out, size_t limit) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  out->len = 0;
  for (;;) {
    reserve(out, 4096);
    size_t room = out->cap - out->len;
    if (out->len + room > limit) room = limit > out->len ? limit - out->len : 0;
    if (room == 0) break;
    ssize_t n = read(fd, out->p + out->len, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return -1;
    }
    if (n == 0) break;
    out->len += (size_t)n;
  }
  close(fd);
  return 0;
}

/* The text of a symbolic link, exactly as readlink gives it. 0 on success. */
static int link_text(const char *path, struct buf *out) {
  size_t size = 256;
  for (;;) {
    out->len = 0;
    reserve(out, size);
    ssize_t n = readlink(path, out->p, size);
    if (n < 0) return -1;
    if ((size_t)n < size) {
      out->len = (size_t)n;
      return 0;
    }
    size *= 2;
  }
}

/* ---- the newc archive ------------------------------------------------------------------- */

static struct buf archive;
static unsigned next_ino = 1;

static void pad4(struct buf *b) {
  static const char zeros[4];
  put(b, zeros, (4 - b->len % 4) % 4);
}

static void cpio_entry(const char *name, unsigned mode, const void *data, size_t len) {
  size_t namesize = strlen(name) + 1;
  putf(&archive, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", next_ino++, mode, 0u, 0u,
       1u, 0u, (unsigned)len, 0u, 0u, 0u, 0u, (unsigned)namesize, 0u);
  put(&archive, name, namesize);
  pad4(&archive);
  put(&archive, data, len);
  pad4(&archive);
}

static void member(const char *name, const void *data, size_t len) { cpio_entry(name, 0100644, data, len); }

static void memberf(const char *name, const char *fmt, ...) {
  struct buf b = {0};
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  reserve(&b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(b.p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  member(name, b.p, (size_t)n);
  free(b.p);
}

/* ---- sha256 (FIPS 180-4) ---------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t full = len / 64 * 64;
  for (size_t i = 0; i < full; i += 64) sha256_block(h, data + i);
  unsigned char tail[128] = {0};
  size_t rest = len - full;
  memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  size_t tlen = rest + 9 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
  sha256_block(h, tail);
  if (tlen == 128) sha256_block(h, tail + 64);
  for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", h[i]);
}

/* ---- gzip, base64, the frame ------------------------------------------------------------ */

static void gzip1(const struct buf *in, struct buf *out) {
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) die(70, "deflateInit2 failed");
  size_t bound = deflateBound(&z, in->len);
  out->len = 0;
  reserve(out, bound);
  z.next_in = (unsigned char *)in->p;
  z.avail_in = (unsigned)in->len;
  z.next_out = (unsigned char *)out->p;
  z.avail_out = (unsigned)bound;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) die(70, "deflate failed");
  out->len = z.total_out;
  deflateEnd(&z);
}

static void base64_lines(const unsigned char *p, size_t n, struct buf *out) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int col = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    char q[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63], i + 1 < n ? tbl[v >> 6 & 63] : '=', i + 2 < n ? tbl[v & 63] : '='};
    put(out, q, 4);
    col += 4;
    if (col == 76) {
      put(out, "\n", 1);
      col = 0;
    }
  }
  if (col) put(out, "\n", 1);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- the snapshot ----------------------------------------------------------------------- */

static char proc_dir[256] = "/proc";

static int cmp_int(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* Numeric entries of a folder, sorted. Returns the count; *out is malloc'd. */
static size_t numeric_entries(const char *dir, long **out) {
  size_t n = 0, cap = 128;
  long *v = malloc(cap * sizeof *v);
  DIR *d = opendir(dir);
  if (!v) die(70, "out of memory");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!isdigit((unsigned char)e->d_name[0])) continue;
      if (n == cap && !(v = realloc(v, (cap *= 2) * sizeof *v))) die(70, "out of memory");
      v[n++] = strtol(e->d_name, NULL, 10);
    }
    closedir(d);
  }
  qsort(v, n, sizeof *v, cmp_int);
  *out = v;
  return n;
}

static void snapshot_process(long pid, struct buf *tmp) {
  char path[512], name[128];
  _Static_assert(sizeof path > 400 + 24, "room for <fd_dir>/<fd>");
  snprintf(path, sizeof path, "%s/%ld/comm", proc_dir, pid);
  if (slurp(path, tmp, 4096) == 0) {
    if (tmp->len && tmp->p[tmp->len - 1] == '\n') tmp->len--;
    snprintf(name, sizeof name, "proc/%ld/comm", pid);
    member(name, tmp->p, tmp->len);
  }
  snprintf(path, sizeof path, "%s/%ld/stat", proc_dir, pid);
  if (slurp(path, tmp, 8192) != 0) return;
  put(tmp, "", 1);
  /* fields after "pid (comm) ": state ppid pgrp session tty_nr tpgid flags */
  char *rp = strrchr(tmp->p, ')');
  long ppid = 0;
  unsigned long flags = 0;
  if (!rp || sscanf(rp + 1, " %*c %ld %*d %*d %*d %*d %lu", &ppid, &flags) != 2) return;
  snprintf(name, sizeof name, "proc/%ld/ppid", pid);
  memberf(name, "%ld", ppid);

  snprintf(name, sizeof name, "proc/%ld/cmdline", pid);
  snprintf(path, sizeof path, "%s/%ld/cmdline", proc_dir, pid);
  if (flags & PF_KTHREAD)
    member(name, "", 0);
  else if (slurp(path, tmp, 1 << 20) == 0)
    member(name, tmp->p, tmp->len);

  static const char *const links[] = {"exe", "cwd", "root"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%ld/%s", proc_dir, pid, links[i]);
    if (link_text(path, tmp) != 0) continue;
    snprintf(name, sizeof name, "proc/%ld/%s", pid, links[i]);
    member(name, tmp->p, tmp->len);
  }

  char fd_dir[400];
  snprintf(fd_dir, sizeof fd_dir, "%s/%ld/fd", proc_dir, pid);
  long *fds;
  size_t nfd = numeric_entries(fd_dir, &fds);
  struct buf lines = {0};
  for (size_t i = 0; i < nfd; i++) {
    snprintf(path, sizeof path, "%s/%ld", fd_dir, fds[i]);
    if (link_text(path, tmp) != 0) continue;
    putf(&lines, "%ld ", fds[i]);
    put(&lines, tmp->p, tmp->len);
    put(&lines, "\n", 1);
  }
  if (lines.len) {
    snprintf(name, sizeof name, "proc/%ld/fd", pid);
    member(name, lines.p, lines.len);
  }
  free(lines.p);
  free(fds);
}

/*
 * The cwd of each process as the process itself sees it (seed 001): what getcwd(2) says with
 * its root and its cwd, "(unreachable)/..." when the cwd lies outside the root. The cwd link
 * read above cannot say so: readlink gives the path from the global root then. Only processes
 * whose root is not the probe's ("/") are read again, all in one child that takes each one's
 * root (chroot into /proc/PID/root) and cwd (fchdir to /proc/PID/cwd) in turn and calls
 * getcwd(2); /proc is reached through an fd opened before the first chroot. The parent adds
 * the answers as proc/PID/cwd_own.
 */
static void snapshot_own_cwds(const long *pids, size_t npids, struct buf *tmp) {
  char path[512];
  long *want = malloc((npids ? npids : 1) * sizeof *want);
  if (!want) die(70, "out of memory");
  size_t nw = 0;
  for (size_t i = 0; i < npids; i++) {
    snprintf(path, sizeof path, "%s/%ld/root", proc_dir, pids[i]);
    if (link_text(path, tmp) != 0) continue;
    if (tmp->len == 1 && tmp->p[0] == '/') continue;
    want[nw++] = pids[i];
  }
  int procfd = nw ? open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  int pfd[2];
  if (procfd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
    if (procfd >= 0) close(procfd);
    free(want);
    return;
  }
  pid_t child = fork();
  if (child < 0) die(70, "fork: %s", strerror(errno));
  if (child == 0) {
    close(pfd[0]);
    struct buf out = {0};
    char rel[64], text[4096];
    for (size_t i = 0; i < nw; i++) {
      snprintf(rel, sizeof rel, "%ld/root", want[i]);
      int rfd = openat(procfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (rfd < 0) continue;
      snprintf(rel, sizeof rel, "%ld/cwd", want[i]);
      int cfd = openat(procfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int in = cfd >= 0 && fchdir(rfd) == 0 && chroot(".") == 0 && fchdir(cfd) == 0;
      close(rfd);
      if (cfd >= 0) close(cfd);
      if (!in) continue;
      /* The raw syscall: glibc's getcwd() refuses an "(unreachable)" answer. Its length counts the NUL. */
      long n = syscall(SYS_getcwd, text, sizeof text);
      if (n <= 0) continue;
      putf(&out, "%ld", want[i]);
      put(&out, "", 1);
      put(&out, text, strnlen(text, (size_t)n));
      put(&out, "", 1);
    }
    for (size_t off = 0; off < out.len;) {
      ssize_t w = write(pfd[1], out.p + off, out.len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(1);
      off += (size_t)w;
    }
    _exit(0);
  }
  close(pfd[1]);
  close(procfd);
  tmp->len = 0;
  for (;;) {
    reserve(tmp, 65536);
    ssize_t n = read(pfd[0], tmp->p + tmp->len, tmp->cap - tmp->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    tmp->len += (size_t)n;
  }
  close(pfd[0]);
  int st = 0;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  char name[128];
  for (size_t off = 0; off < tmp->len;) {
    const char *pid = tmp->p + off;
    size_t pl = strnlen(pid, tmp->len - off);
    if (off + pl + 1 >= tmp->len) break;
    const char *text = pid + pl + 1;
    size_t tl = strnlen(text, tmp->len - off - pl - 1);
    if (off + pl + 1 + tl >= tmp->len) break;
    snprintf(name, sizeof name, "proc/%s/cwd_own", pid);
    member(name, text, tl);
    off += pl + 1 + tl + 1;
  }
  free(want);
}

/* Run `sh -c COMMAND` with stdin from /dev/null and stdout+stderr captured; its status as the shell's $?. */
static int run_command(const char *command, struct buf *out) {
  char sh[512];
  snprintf(sh, sizeof sh, "%s/busybox", toolkit);
  int own = access(sh, X_OK) == 0;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) die(70, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die(70, "fork: %s", strerror(errno));
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    else close(0);
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    if (own) execl(sh, "sh", "-c", command, (char *)NULL);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    dprintf(2, "rootprobe probe: no shell to run the command (%s/busybox, /bin/sh)\n", toolkit);
    _exit(127);
  }
  close(pfd[1]);
  out->len = 0;
  for (;;) {
    reserve(out, 65536);
    ssize_t n = read(pfd[0], out->p + out->len, out->cap - out->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out->len + (size_t)n <= MAX_FILE) out->len += (size_t)n; /* beyond the cap: drained, not kept */
  }
  close(pfd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Whether the kernel command line holds the word `word`. */
static int cmdline_has(const char *word) {
  char path[300];
  struct buf cl = {0}, hay = {0}, w = {0};
  snprintf(path, sizeof path, "%s/cmdline", proc_dir);
  if (slurp(path, &cl, 65536) != 0) return 0;
  while (cl.len && (cl.p[cl.len - 1] == '\n' || cl.p[cl.len - 1] == ' ')) cl.len--;
  putf(&hay, " %.*s ", (int)cl.len, cl.p);
  putf(&w, " %s ", word);
  int found = strstr(hay.p, w.p) != NULL;
  free(cl.p), free(hay.p), free(w.p);
  return found;
}

/* Under UEFI (`rootprobe.efi` on the command line): the boot loader's and stub's EFI variables
   (systemd-boot's Loader*, systemd-stub's Stub*) as files/sys/firmware/efi/efivars/<name>.
   Read by a child in a mount namespace of its own, with its own tmpfs, sysfs and efivarfs, so
   that the guest's mount tree (already read) is never touched. Nothing when that fails. */
static void efivars_members(void) {
  /* The command line the kernel got, from the kernel (the console may drop bytes). */
  char cpath[300];
  struct buf cl = {0};
  snprintf(cpath, sizeof cpath, "%s/cmdline", proc_dir);
  if (slurp(cpath, &cl, 65536) == 0) member("files/proc/cmdline", cl.p, cl.len);
  free(cl.p);
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(1);
    static const char *spots[] = {"/tmp", "/mnt", "/run", "/dev", "/proc"};
    const char *at = NULL;
    for (size_t i = 0; i < sizeof spots / sizeof *spots && !at; i++)
      if (mount("rootprobe-efi", spots[i], "tmpfs", 0, "size=64k") == 0) at = spots[i];
    if (!at) _exit(1);
    char sys[300], vars[400], p[700];
    snprintf(sys, sizeof sys, "%s/sys", at);
    mkdir(sys, 0755);
    if (mount("rootprobe-sysfs", sys, "sysfs", MS_RDONLY, NULL) != 0) _exit(1);
    struct buf b = {0}, out = {0};
    /* Present only when the kernel was started by UEFI: 64 or 32, the firmware's word size. */
    snprintf(p, sizeof p, "%s/firmware/efi/fw_platform_size", sys);
    if (slurp(p, &b, 64) == 0) {
      putf(&out, "fw_platform_size\n%zu\n", b.len);
      put(&out, b.p, b.len);
    }
    snprintf(vars, sizeof vars, "%s/firmware/efi/efivars", sys);
    DIR *d = mount("rootprobe-efivarfs", vars, "efivarfs", MS_RDONLY, NULL) == 0 ? opendir(vars) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strncmp(e->d_name, "Loader", 6) && strncmp(e->d_name, "Stub", 4)) continue;
      snprintf(p, sizeof p, "%s/%s", vars, e->d_name);
      if (slurp(p, &b, 65536) != 0) continue;
      putf(&out, "efivars/%s\n%zu\n", e->d_name, b.len);
      put(&out, b.p, b.len);
    }
    write_all(fds[1], out.p ? out.p : "", out.len);
    _exit(0);
  }
  close(fds[1]);
  struct buf in = {0};
  char chunk[4096];
  ssize_t n;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) put(&in, chunk, (size_t)n);
  close(fds[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  size_t at = 0;
  while (at < in.len) {
    char *nl = memchr(in.p + at, '\n', in.len - at);
    if (!nl) break;
    char name[300];
    snprintf(name, sizeof name, "files/sys/firmware/efi/%.*s", (int)(nl - (in.p + at)), in.p + at);
    char *end;
    size_t len = strtoul(nl + 1, &end, 10);
    if (*end != '\n' || (size_t)(end + 1 - in.p) + len > in.len) break;
    member(name, end + 1, len);
    at = (size_t)(end + 1 - in.p) + len;
  }
  free(in.p);
}

static int valid_stage(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64 || s[0] == '-') return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') return 0;
  return 1;
}

/* A name used as one path element of a member (cmd/NAME.out, vars/NAME). */
static int valid_name(const char *s) { return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."); }

static void usage(void) {
  fputs("usage: probe STAGE [-f PATH]... [-c NAME COMMAND]... [-v NAME=VALUE]... [-o FILE]\n", stderr);
  exit(64);
}

/* A virtio-serial port found by name (rootprobe.port=vport:NAME, on machines with one UART):
   /sys/class/virtio-ports/<vportNpM>/name says each port's name and `dev` its numbers, which the
   kernel picks at boot. Opened as /dev/<vportNpM> where the guest has that node, else through a
   node of the probe's own on a tmpfs at /.rootprobe/dev; a sysfs of its own on /.rootprobe/sys
   where the guest has none mounted. Both are unmounted (lazily: the descriptor stays good)
   before the probe returns; the snapshot was taken before either was mounted. */
static int open_vport(const char *want) {
  char sysdir[256], p[600], dev[300], sysmnt[256];
  int own_sys = 0, own_dev = 0, fd = -1;
  snprintf(sysdir, sizeof sysdir, "/sys/class/virtio-ports");
  snprintf(sysmnt, sizeof sysmnt, "%s/sys", toolkit);
  if (access(sysdir, R_OK) != 0) {
    mkdir(sysmnt, 0555);
    if (mount("rootprobe-sys", sysmnt, "sysfs", 0, NULL) != 0) return -1;
    own_sys = 1;
    snprintf(sysdir, sizeof sysdir, "%s/sys/class/virtio-ports", toolkit);
  }
  DIR *d = opendir(sysdir);
  struct dirent *e;
  unsigned maj = 0, min = 0;
  char port[256] = "";
  struct buf b = {0};
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s/name", sysdir, e->d_name);
    if (slurp(p, &b, 4096) != 0) continue;
    while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == ' ')) b.len--;
    if (b.len != strlen(want) || memcmp(b.p, want, b.len) != 0) continue;
    snprintf(p, sizeof p, "%s/%s/dev", sysdir, e->d_name);
    if (slurp(p, &b, 4096) != 0) continue;
    reserve(&b, 1);
    b.p[b.len] = 0;
    if (sscanf(b.p, "%u:%u", &maj, &min) == 2) {
      snprintf(port, sizeof port, "%s", e->d_name);
      break;
    }
  }
  if (d) closedir(d);
  free(b.p);
  if (own_sys) umount2(sysmnt, MNT_DETACH);
  if (!port[0]) {
    errno = ENOENT;
    return -1;
  }
  struct stat st;
  snprintf(dev, sizeof dev, "/dev/%s", port);
  if (stat(dev, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(maj, min)) return open(dev, O_WRONLY | O_NOCTTY | O_CLOEXEC);
  char mnt[256];
  snprintf(mnt, sizeof mnt, "%s/dev", toolkit);
  mkdir(mnt, 0555);
  if (mount("rootprobe-dev", mnt, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=16k,mode=0700") != 0) return -1;
  own_dev = 1;
  snprintf(dev, sizeof dev, "%s/port", mnt);
  if (mknod(dev, S_IFCHR | 0600, makedev(maj, min)) == 0) fd = open(dev, O_WRONLY | O_NOCTTY | O_CLOEXEC);
  int saved = errno;
  if (own_dev) umount2(mnt, MNT_DETACH);
  errno = saved;
  return fd;
}

int main(int argc, char **argv) {
  static char dir[512];
  const char *slash = strrchr(argv[0], '/');
  if (slash && (size_t)(slash - argv[0]) < sizeof dir) {
    memcpy(dir, argv[0], (size_t)(slash - argv[0]));
    toolkit = dir[0] ? dir : "/";
  }
  if (argc < 2) usage();
  const char *stage = argv[1];
  if (stage[0] == '-') usage();
  if (!valid_stage(stage)) die(64, "bad stage name '%s' (letters, digits, _ . - only)", stage);

  /* Every argument is checked before anything is read, so that a bad call sends nothing. */
  const char *out_file = NULL;
  for (int i = 2; i < argc;) {
    const char *a = argv[i];
    if (!strcmp(a, "-f")) {
      if (i + 1 >= argc || !argv[i + 1][0]) die(64, "-f needs a path");
      i += 2;
    } else if (!strcmp(a, "-c")) {
      if (i + 2 >= argc || !argv[i + 1][0] || !argv[i + 2][0]) die(64, "-c needs a name and a command");
      if (!valid_name(argv[i + 1])) die(64, "bad command name '%s'", argv[i + 1]);
      i += 3;
    } else if (!strcmp(a, "-v")) {
      const char *eq = i + 1 < argc ? strchr(argv[i + 1], '=') : NULL;
      if (!eq) die(64, "-v needs NAME=VALUE");
      char nm[256];
      snprintf(nm, sizeof nm, "%.*s", (int)(eq - argv[i + 1]), argv[i + 1]);
      if (!valid_name(nm)) die(64, "bad value name '%s'", nm);
      i += 2;
    } else if (!strcmp(a, "-o")) {
      if (i + 1 >= argc || !argv[i + 1][0]) die(64, "-o needs a file");
      out_file = argv[i + 1];
      i += 2;
    } else {
      die(64, "unknown argument '%s'", a);
    }
  }

  int own_proc = 0;
  if (access("/proc/self/mountinfo", R_OK) != 0) {
    snprintf(proc_dir, sizeof proc_dir, "%s/proc", toolkit);
    mkdir(proc_dir, 0555);
    if (mount("rootprobe-proc", proc_dir, "proc", 0, NULL) == 0) own_proc = 1;
  }

  struct buf tmp = {0}, tmp2 = {0};
  char path[512], name[600];

  /* 1. The mount tree, before anything else. */
  snprintf(path, sizeof path, "%s/self/mountinfo", proc_dir);
  if (slurp(path, &tmp, 64u << 20) != 0) die(70, "cannot read %s: %s", path, strerror(errno));
  member("mountinfo.self", tmp.p, tmp.len);
  snprintf(path, sizeof path, "%s/1/mountinfo", proc_dir);
  if (slurp(path, &tmp, 64u << 20) != 0) tmp.len = 0;
  member("mountinfo.1", tmp.p, tmp.len);

  /* 2. Every process. */
  long *pids;
  size_t npids = numeric_entries(proc_dir, &pids);
  for (size_t i = 0; i < npids; i++) snapshot_process(pids[i], &tmp);
  snapshot_own_cwds(pids, npids, &tmp);
  free(pids);

  /* 3. What the scenario asked for, in the order asked. */
  for (int i = 2; i < argc;) {
    const char *a = argv[i];
    if (!strcmp(a, "-f")) {
      const char *p = argv[i + 1];
      struct stat st;
      if (stat(p, &st) == 0) {
        snprintf(name, sizeof name, "files/%s", p[0] == '/' ? p + 1 : p);
        if (slurp(p, &tmp, MAX_FILE) != 0) tmp.len = 0;
        member(name, tmp.p, tmp.len);
      }
      i += 2;
    } else if (!strcmp(a, "-c")) {
      int rc = run_command(argv[i + 2], &tmp2);
      snprintf(name, sizeof name, "cmd/%s.out", argv[i + 1]);
      member(name, tmp2.p, tmp2.len);
      snprintf(name, sizeof name, "cmd/%s.rc", argv[i + 1]);
      memberf(name, "%d\n", rc);
      i += 3;
    } else if (!strcmp(a, "-v")) {
      const char *eq = strchr(argv[i + 1], '=');
      snprintf(name, sizeof name, "vars/%.*s", (int)(eq - argv[i + 1]), argv[i + 1]);
      member(name, eq + 1, strlen(eq + 1));
      i += 2;
    } else {
      i += 2; /* -o */
    }
  }

  /* 3b. Under UEFI: the boot loader's variables. */
  if (cmdline_has("rootprobe.efi")) efivars_members();

  struct utsname u;
  if (uname(&u) != 0) strcpy(u.release, "?");
  snprintf(path, sizeof path, "%s/uptime", proc_dir);
  char up[64] = "";
  if (slurp(path, &tmp, 4096) == 0) snprintf(up, sizeof up, "%.*s", (int)strcspn(tmp.p, " \n"), tmp.p);
  memberf("meta", "stage=%s\nprobe_pid=%d\nuname_r=%s\nuptime=%s\nown_proc=%d\nprobe=c\n", stage, (int)getpid(),
          u.release, up, own_proc);
  cpio_entry("TRAILER!!!", 0, "", 0);

  /* 4. Pack, frame, send. */
  struct buf gz = {0}, frame = {0};
  gzip1(&archive, &gz);
  char sum[65];
  sha256_hex((unsigned char *)gz.p, gz.len, sum);
  putf(&frame, "ROOTPROBE-BEGIN v1 %s %zu %s\n", stage, gz.len, sum);
  base64_lines((unsigned char *)gz.p, gz.len, &frame);
  putf(&frame, "ROOTPROBE-END %s\n", stage);

  int rc = 0, fd;
  if (out_file && !strcmp(out_file, "-")) {
    fd = 1;
  } else if (out_file) {
    fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } else {
    /* The result channel: the device the kernel command line names (rootprobe.port=NAME, put
       there from the architecture table, harness/arch/) under /dev if the guest has it, else
       the toolkit's own node of it (`port`, for roots without /dev). */
    struct stat st;
    char dev[128] = "";
    struct buf cl = {0};
    snprintf(path, sizeof path, "%s/cmdline", proc_dir);
    if (slurp(path, &cl, 65536) == 0) {
      reserve(&cl, 1);
      cl.p[cl.len] = 0;
      const char *p = cl.p;
      while ((p = strstr(p, "rootprobe.port=")) != NULL) {
        if (p == cl.p || p[-1] == ' ') {
          p += strlen("rootprobe.port=");
          size_t n = strcspn(p, " \n");
          if (n > 0 && n < 100 && !memchr(p, '/', n)) snprintf(dev, sizeof dev, "%.*s", (int)n, p);
          break;
        }
        p++;
      }
      free(cl.p);
    }
    if (!strncmp(dev, "vport:", 6)) {
      fd = open_vport(dev + 6);
    } else {
      char tty[160];
      snprintf(tty, sizeof tty, "/dev/%s", dev);
      if (!dev[0] || stat(tty, &st) != 0 || !S_ISCHR(st.st_mode)) snprintf(tty, sizeof tty, "%s/port", toolkit);
      fd = open(tty, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    }
    struct termios t;
    if (fd >= 0 && isatty(fd) && tcgetattr(fd, &t) == 0) {
      cfmakeraw(&t);
      tcsetattr(fd, TCSANOW, &t);
    }
  }
  if (fd < 0 || write_all(fd, frame.p, frame.len) != 0) {
    fprintf(stderr, "rootprobe probe: cannot send stage %s: %s\n", stage, strerror(errno));
    rc = 74;
  }
  if (fd > 2) {
    if (!out_file && isatty(fd)) tcdrain(fd);
    close(fd);
  }

  /* `rootprobe shell --stage STAGE` puts rootprobe.shell=STAGE on the kernel command line: once
     that stage is sent, an interactive shell on the console; the guest script goes on when it exits. */
  int shell_here = 0;
  snprintf(path, sizeof path, "%s/cmdline", proc_dir);
  if (!out_file && slurp(path, &tmp, 65536) == 0) {
    while (tmp.len && (tmp.p[tmp.len - 1] == '\n' || tmp.p[tmp.len - 1] == ' ')) tmp.len--;
    struct buf hay = {0};
    putf(&hay, " %.*s ", (int)tmp.len, tmp.p);
    snprintf(name, sizeof name, " rootprobe.shell=%s ", stage);
    shell_here = strstr(hay.p, name) != NULL;
    free(hay.p);
  }
  if (own_proc) umount(proc_dir);

  struct stat cst;
  if (shell_here && stat("/dev/console", &cst) == 0 && S_ISCHR(cst.st_mode)) {
    char bb[512], ps1[128];
    snprintf(bb, sizeof bb, "%s/busybox", toolkit);
    snprintf(ps1, sizeof ps1, "[%s] \\w # ", stage);
    int con = open("/dev/console", O_RDWR | O_NOCTTY);
    if (con >= 0) {
      dprintf(con, "rootprobe: stage '%s' sent; guest shell (exit: the guest goes on; Ctrl-a x: quit QEMU)\n", stage);
      pid_t pid = fork();
      if (pid == 0) {
        dup2(con, 0), dup2(con, 1), dup2(con, 2);
        setenv("PS1", ps1, 1);
        execl(bb, "busybox", "setsid", bb, "cttyhack", bb, "sh", "-i", (char *)NULL);
        _exit(127);
      }
      close(con);
      int st;
      if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
  }
  return rc;
}
