/* httpload: loopback attack and load probes for the agent's HTTP endpoint (docs/security.md "HTTP endpoint"). */
/*
 *   httpload slow  PORT N SECONDS [TRICKLE]   N connections hold an unfinished
 *       request head (TRICKLE=1: one more byte every second, which defeats
 *       per-read timeouts) while GET /metrics is timed every 200 ms with a 2 s
 *       limit; prints probes answered, the worst latency, and how many of the
 *       N connections the server closed.
 *   httpload body  PORT MIB METHOD PATH       streams MIB MiB of zeros after a
 *       head with that Content-Length and prints the status line (or "closed")
 *       and how many bytes went out before the server answered.
 *   httpload rps   PORT PATH SECONDS CONNS    CONNS keep-alive clients send
 *       GET PATH back to back; prints requests per second.
 *
 * Only 127.0.0.1 is ever contacted. Every loop is bounded by SECONDS.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port_;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port_)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads until the end of a response head or limit_s; returns the status or -1. */
static int read_status(int fd, double limit_s, char* line, size_t cap) {
  char buf[65536];
  size_t got = 0;
  const double end = now_s() + limit_s;
  while (now_s() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    buf[got] = 0;
    if (strstr(buf, "\r\n\r\n") || got == sizeof(buf) - 1) break;
  }
  buf[got] = 0;
  char* eol = strstr(buf, "\r\n");
  if (eol) *eol = 0;
  const char* text = got ? buf : "closed";
  size_t len = strnlen(text, cap - 1);
  memcpy(line, text, len);
  line[len] = 0;
  int status = -1;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
  return status;
}

/* One GET on a fresh connection: latency in s, or -1 when unanswered in limit_s. */
static double probe(const char* path, double limit_s) {
  const double t0 = now_s();
  int fd = dial();
  if (fd < 0) return -1;
  char req[256], line[256];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
  int status = write(fd, req, n) == n ? read_status(fd, limit_s, line, sizeof(line)) : -1;
  close(fd);
  return status == 200 ? now_s() - t0 : -1;
}

static int slow(int n, double seconds, int trickle) {
  int* fds = calloc(n, sizeof(int));
  int opened = 0;
  for (int i = 0; i < n; ++i) {
    fds[i] = dial();
    if (fds[i] >= 0 && write(fds[i], "GET /metrics HTTP/1.1\r\nHost: x\r\n", 32) == 32) ++opened;
  }
  int probes = 0, answered = 0;
  double worst = 0;
  const double end = now_s() + seconds;
  double next_byte = now_s() + 1;
  while (now_s() < end) {
    if (trickle && now_s() >= next_byte) {
      for (int i = 0; i < n; ++i)
        if (fds[i] >= 0 && send(fds[i], "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
          close(fds[i]);
          fds[i] = -1;
        }
      next_byte += 1;
    }
    const double t = probe("/metrics", 2.0);
    ++probes;
    if (t >= 0) {
      ++answered;
      if (t > worst) worst = t;
    }
    usleep(200000);
  }
  int closed = 0;
  for (int i = 0; i < n; ++i) {
    if (fds[i] < 0) {
      ++closed;
      continue;
    }
    char c;
    ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN)) ++closed;
    close(fds[i]);
  }
  printf("slow: %d of %d held heads opened%s; /metrics answered %d of %d probes (worst %.3f s); server closed %d\n",
         opened, n, trickle ? " (trickling)" : "", answered, probes, worst, closed);
  free(fds);
  return 0;
}

static int body(long mib, const char* method, const char* path) {
  int fd = dial();
  if (fd < 0) return 1;
  char head[256], line[256];
  const long long total = (long long)mib << 20;
  int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %lld\r\n\r\n", method, path,
                   total);
  if (write(fd, head, n) != n) return 1;
  static char zeros[1 << 16];
  long long sent = 0;
  const double t0 = now_s();
  while (sent < total && now_s() - t0 < 60) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    if (poll(&p, 1, 1000) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) break; /* the server answered or closed */
    ssize_t w = send(fd, zeros, sizeof(zeros), MSG_NOSIGNAL);
    if (w <= 0) break;
    sent += w;
  }
  int status = read_status(fd, 5, line, sizeof(line));
  printf("body: %s %s with %ld MiB: \"%s\" (%d) after %.1f MiB sent, %.2f s\n", method, path, mib, line, status,
         sent / 1048576.0, now_s() - t0);
  close(fd);
  return 0;
}

static const char* rps_path_;
static double rps_end_;
static atomic_long rps_done_;

static void* rps_worker(void* arg) {
  (void)arg;
  char req[256], buf[1 << 16];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", rps_path_);
  int fd = -1;
  while (now_s() < rps_end_) {
    if (fd < 0 && (fd = dial()) < 0) break;
    if (write(fd, req, n) != n) {
      close(fd);
      fd = -1;
      continue;
    }
    /* Read one response: the head, then Content-Length bytes of body. */
    size_t got = 0;
    long want = -1;
    int ok = 0;
    for (;;) {
      ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
      if (r <= 0) break;
      got += (size_t)r;
      buf[got] = 0;
      char* end = strstr(buf, "\r\n\r\n");
      if (!end) continue;
      if (want < 0) {
        char* cl = strcasestr(buf, "content-length:");
        if (!cl || cl > end) break;
        want = (end + 4 - buf) + atol(cl + 15);
      }
      if ((long)got >= want) {
        ok = (long)got == want;
        break;
      }
      if (got > sizeof(buf) / 2) { /* keep only what the count needs */
        want -= (long)got;
        got = 0;
        buf[0] = 0;
        want = want < 0 ? 0 : want;
        for (;;) {
          r = read(fd, buf, sizeof(buf));
          if (r <= 0) break;
          want -= r;
          if (want <= 0) break;
        }
        ok = want == 0;
        break;
      }
    }
    if (!ok) {
      close(fd);
      fd = -1;
      continue;
    }
    atomic_fetch_add(&rps_done_, 1);
  }
  if (fd >= 0) close(fd);
  return NULL;
}

static int rps(const char* path, double seconds, int conns) {
  rps_path_ = path;
  const double t0 = now_s();
  rps_end_ = t0 + seconds;
  pthread_t* th = calloc(conns, sizeof(pthread_t));
  for (int i = 0; i < conns; ++i) pthread_create(&th[i], NULL, rps_worker, NULL);
  for (int i = 0; i < conns; ++i) pthread_join(th[i], NULL);
  printf("rps: GET %s, %d keep-alive clients, %.0f requests/s\n", path, conns,
         atomic_load(&rps_done_) / (now_s() - t0));
  free(th);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 5 && strcmp(argv[1], "slow") == 0) {
    port_ = atoi(argv[2]);
    return slow(atoi(argv[3]), atof(argv[4]), argc > 5 && atoi(argv[5]));
  }
  if (argc == 6 && strcmp(argv[1], "body") == 0) {
    port_ = atoi(argv[2]);
    return body(atol(argv[3]), argv[4], argv[5]);
  }
  if (argc == 6 && strcmp(argv[1], "rps") == 0) {
    port_ = atoi(argv[2]);
    return rps(argv[3], atof(argv[4]), atoi(argv[5]));
  }
  fprintf(stderr, "usage: httpload slow PORT N SECONDS [TRICKLE] | body PORT MIB METHOD PATH | rps PORT PATH S CONNS\n");
  return 2;
}
