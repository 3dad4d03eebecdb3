/*
 * uncpio IMAGE DIR: unpacks an initramfs image (newc cpio archives, uncompressed, one after
 * another with NUL padding between them, as the kernel takes them) into DIR, the way the
 * kernel does: later archives replace what earlier ones wrote. busybox cpio stops at the
 * first archive's trailer, which is why this exists. Prints "entries N bytes M".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "uncpio: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(1);
}

static unsigned long hex8(const char *p) {
  char buf[9];
  memcpy(buf, p, 8);
  buf[8] = 0;
  return strtoul(buf, NULL, 16);
}

static size_t align4(size_t n) { return (n + 3) & ~(size_t)3; }

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: uncpio IMAGE DIR\n");
    return 64;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) die("open", argv[1]);
  /* /sys/firmware/initrd has its size in st_size, but cannot be mmapped: read it whole. */
  struct stat st;
  if (fstat(fd, &st) != 0) die("stat", argv[1]);
  size_t len = (size_t)st.st_size, got = 0;
  char *img = malloc(len ? len : 1);
  if (!img) die("malloc", NULL);
  while (got < len) {
    ssize_t n = read(fd, img + got, len - got);
    if (n < 0) die("read", argv[1]);
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  len = got;
  if (chdir(argv[2]) != 0) die("chdir", argv[2]);
  umask(0); /* modes as the archive gives them, as the kernel does */

  size_t off = 0;
  unsigned long entries = 0;
  while (off + 110 <= len) {
    if (img[off] == 0) { /* padding between archives */
      off += 4;
      continue;
    }
    const char *h = img + off;
    if (memcmp(h, "070701", 6) != 0 && memcmp(h, "070702", 6) != 0) {
      fprintf(stderr, "uncpio: no newc header at offset %zu\n", off);
      return 1;
    }
    unsigned long mode = hex8(h + 14), uid = hex8(h + 22), gid = hex8(h + 30);
    unsigned long size = hex8(h + 54), rmaj = hex8(h + 78), rmin = hex8(h + 86), namesize = hex8(h + 94);
    size_t name_off = off + 110;
    if (namesize == 0 || name_off + namesize > len) {
      fprintf(stderr, "uncpio: bad name size at offset %zu\n", off);
      return 1;
    }
    const char *name = img + name_off;
    size_t data_off = align4(name_off + namesize);
    if (data_off + size > len) {
      fprintf(stderr, "uncpio: %s runs past the end of the image\n", name);
      return 1;
    }
    off = align4(data_off + size);
    if (strcmp(name, "TRAILER!!!") == 0) continue;
    const char *p = name[0] == '/' ? name + 1 : name;
    if (!*p || strcmp(p, ".") == 0) continue;
    entries++;
    switch (mode & S_IFMT) {
    case S_IFDIR:
      if (mkdir(p, mode & 07777) != 0 && errno != EEXIST) die("mkdir", p);
      if (chmod(p, mode & 07777) != 0) die("chmod", p);
      break;
    case S_IFREG: {
      unlink(p);
      int out = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode & 07777);
      if (out < 0) die("create", p);
      size_t w = 0;
      while (w < size) {
        ssize_t n = write(out, img + data_off + w, size - w);
        if (n < 0) die("write", p);
        w += (size_t)n;
      }
      if (fchmod(out, mode & 07777) != 0) die("chmod", p);
      close(out);
      break;
    }
    case S_IFLNK: {
      char *target = strndup(img + data_off, size);
      unlink(p);
      if (!target || symlink(target, p) != 0) die("symlink", p);
      free(target);
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      unlink(p);
      if (mknod(p, mode, makedev(rmaj, rmin)) != 0) die("mknod", p);
      break;
    default:
      fprintf(stderr, "uncpio: %s has an unknown type %lo\n", p, mode & S_IFMT);
      return 1;
    }
    if (lchown(p, uid, gid) != 0) die("chown", p);
  }
  printf("entries %lu bytes %zu\n", entries, len);
  return 0;
}
