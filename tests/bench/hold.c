/* hold: loopback load tool that opens N connections and holds them, or leaves N sockets in TIME_WAIT. */
/*
 * Hold mode (default): binds one listener to ADDR:PORT, opens N connections
 * to it from this process (2 N open files: keep N under half the fd limit,
 * run several processes for more), prints "ready N" on stdout once all are
 * established, then holds them until -d runs out or stdin closes, and exits.
 * TIME_WAIT mode (-w): N connect()/close() rounds where the client closes
 * first, so N client sockets stay in TIME_WAIT for 60 s; prints "ready N".
 * Nothing leaves the loopback interface.
 *
 *   hold -n CONNS [-d MAX_SECONDS] [-a ADDR] [-p PORT] [-w]
 *
 * Exit 0 on success, 1 with one line on stderr on a failure, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "hold: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr, "hold: %s; usage: hold -n CONNS [-d MAX_SECONDS (600)] [-a ADDR (127.0.0.1)] [-p PORT (0)] [-w]\n",
          why);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listener(struct sockaddr_in *addr) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t len = sizeof *addr;
  if (l < 0) die("socket");
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)addr, sizeof *addr) < 0) die("bind");
  if (listen(l, 4096) < 0) die("listen");
  if (getsockname(l, (struct sockaddr *)addr, &len) < 0) die("getsockname");
  return l;
}

static int connect_one(const struct sockaddr_in *addr) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0) die("socket");
  if (connect(c, (const struct sockaddr *)addr, sizeof *addr) < 0) die("connect");
  return c;
}

int main(int argc, char **argv) {
  long n = 0;
  double max_s = 600;
  const char *host = "127.0.0.1";
  int port = 0, time_wait = 0, opt;
  while ((opt = getopt(argc, argv, "n:d:a:p:w")) != -1) {
    char *end = NULL;
    switch (opt) {
      case 'n': n = strtol(optarg, &end, 10); break;
      case 'd': max_s = strtod(optarg, &end); break;
      case 'a': host = optarg; break;
      case 'p': port = (int)strtol(optarg, &end, 10); break;
      case 'w': time_wait = 1; break;
      default: usage("unknown option");
    }
    if (end && *end) usage("not a number");
  }
  if (n <= 0 || n > 1000000) usage("-n must be 1..1000000");
  if (max_s <= 0 || max_s > 86400) usage("-d must be in (0, 86400]");
  if (port < 0 || port > 65535) usage("-p must be 0..65535");

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage("-a is not an IPv4 address");
  int l = listener(&addr);
  const double deadline = now_s() + max_s;

  if (time_wait) {
    for (long i = 0; i < n; i++) {
      int c = connect_one(&addr);
      int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
      if (a < 0) die("accept");
      close(c); /* the client closes first: its socket goes to TIME_WAIT */
      close(a);
      if (now_s() > deadline) {
        fprintf(stderr, "hold: -d ran out after %ld of %ld TIME_WAIT sockets\n", i, n);
        return 1;
      }
    }
    printf("ready %ld\n", n);
    fflush(stdout);
    return 0;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)(2 * n + 16) > rl.rlim_cur) {
    fprintf(stderr, "hold: -n %ld needs %ld open files, the limit is %lu: run several processes\n", n, 2 * n + 16,
            (unsigned long)rl.rlim_cur);
    return 1;
  }
  int *fds = calloc((size_t)(2 * n), sizeof *fds);
  if (!fds) die("calloc");
  for (long i = 0; i < n; i++) {
    fds[2 * i] = connect_one(&addr);
    fds[2 * i + 1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (fds[2 * i + 1] < 0) die("accept");
    if (now_s() > deadline) {
      fprintf(stderr, "hold: -d ran out after %ld of %ld connections\n", i, n);
      return 1;
    }
  }
  printf("ready %ld\n", n);
  fflush(stdout);
  /* Hold until stdin closes or -d runs out. */
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) break;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int r = poll(&p, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno != EINTR) die("poll");
    if (r > 0) {
      char b[64];
      if (read(0, b, sizeof b) <= 0) break;
    }
  }
  return 0;
}
