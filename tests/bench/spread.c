/* spread: loopback load tool that connects to N distinct destinations (127.x.y.z addresses or ports) at a paced rate. */
/*
 * Every connection goes to a destination of its own listener process: this
 * one. Address mode (default) binds ONE listener to 0.0.0.0:PORT and
 * connects to FIRST, FIRST+1, ... inside 127.0.0.0/8, which the kernel
 * delivers over lo to that listener. Port mode binds N listeners to
 * 127.0.0.1:PORT, PORT+1, ... (one open file each). Accepting threads
 * accept and close; the main thread connect()s and closes, one socket at a
 * time, destination k % N for connection k (or a fresh permutation of the
 * N destinations every round with -x), paced to RATE per second against an
 * absolute schedule so the average rate holds even after a stall. Nothing
 * leaves the loopback interface.
 *
 *   spread -n DESTS [-c CONNS_PER_DEST] [-r RATE] [-d MAX_SECONDS]
 *          [-m addr|port] [-a FIRST_ADDR] [-p PORT] [-x] [-l] [-t THREADS] [-q]
 *
 * -c 0 connects until -d runs out (a noise generator); otherwise reaching
 * -d before N*C connections is an error. Exit 0 on success with one summary
 * line on stdout (unless -q), 1 with one line on stderr on any failure,
 * 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16
#define MAX_SECONDS_LIMIT 86400.0
#define CONNECT_TIMEOUT_S 5.0 /* a loopback connect waits only if the backlog overflowed */
#define DRAIN_S 1.0           /* after the last connect, time for the acceptors to catch up */
#define FD_RESERVE 64         /* open files kept free beside port mode's listeners */

static struct {
  uint32_t dests;
  uint64_t per_dest; /* 0 = until the deadline */
  double rate;       /* per second, 0 = as fast as possible */
  double max_s;
  int port_mode;
  uint32_t first_addr; /* host order */
  unsigned port;
  int shuffle, rst, quiet;
  unsigned threads;
} opt = {0, 1, 0, 60, 0, 0x7f010001u /* 127.1.0.1 */, 0, 0, 0, 0, 2};

static int *listeners;
static uint16_t *ports; /* port mode: each listener's port; address mode: ports[0] */
static unsigned nlisteners;
static int epfd = -1;
static atomic_int stop;
static atomic_uint_fast64_t accepted;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("spread: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr,
          "spread: %s; usage: spread -n DESTS [-c CONNS_PER_DEST (1; 0 = until -d)] [-r RATE/s (0 = max)] "
          "[-d MAX_SECONDS (60)] [-m addr|port] [-a FIRST_ADDR (127.1.0.1)] [-p PORT (0 = any)] [-x shuffle] "
          "[-l RST close] [-t ACCEPT_THREADS (2)] [-q]\n",
          why);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static double parse_num(const char *s, double lo, double hi, const char *what) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < lo || v > hi) {
    char msg[128];
    snprintf(msg, sizeof msg, "bad %s '%s' (%.10g..%.10g)", what, s, lo, hi);
    usage(msg);
  }
  return v;
}

static void parse_args(int argc, char **argv) {
  int c;
  struct in_addr a;
  while ((c = getopt(argc, argv, "n:c:r:d:m:a:p:xlt:q")) != -1) {
    switch (c) {
      case 'n': opt.dests = (uint32_t)parse_num(optarg, 1, 1 << 24, "-n"); break;
      case 'c': opt.per_dest = (uint64_t)parse_num(optarg, 0, 1e9, "-c"); break;
      case 'r': opt.rate = parse_num(optarg, 0, 1e7, "-r"); break;
      case 'd': opt.max_s = parse_num(optarg, 0.001, MAX_SECONDS_LIMIT, "-d"); break;
      case 'm':
        if (!strcmp(optarg, "addr")) opt.port_mode = 0;
        else if (!strcmp(optarg, "port")) opt.port_mode = 1;
        else usage("-m takes addr or port");
        break;
      case 'a':
        if (inet_pton(AF_INET, optarg, &a) != 1) usage("-a takes an IPv4 address");
        opt.first_addr = ntohl(a.s_addr);
        break;
      case 'p': opt.port = (unsigned)parse_num(optarg, 0, 65535, "-p"); break;
      case 'x': opt.shuffle = 1; break;
      case 'l': opt.rst = 1; break;
      case 't': opt.threads = (unsigned)parse_num(optarg, 1, MAX_THREADS, "-t"); break;
      case 'q': opt.quiet = 1; break;
      default: usage("unknown option");
    }
  }
  if (optind != argc) usage("unexpected argument");
  if (!opt.dests) usage("-n DESTS is required");
  if (opt.port_mode) {
    if (opt.port && opt.port + opt.dests - 1 > 65535) usage("-p PORT + DESTS - 1 exceeds 65535");
    if (opt.dests > 65535) usage("port mode has at most 65535 destinations");
  } else {
    /* Only loopback: 127.0.0.0 and the broadcast 127.255.255.255 do not take connections. */
    uint64_t last = (uint64_t)opt.first_addr + opt.dests - 1;
    if ((opt.first_addr >> 24) != 127 || opt.first_addr == 0x7f000000u || last > 0x7ffffffeu)
      usage("address mode: FIRST_ADDR .. FIRST_ADDR + DESTS - 1 must stay inside 127.0.0.1 .. 127.255.255.254");
  }
}

static int make_listener(uint32_t addr, unsigned port, uint16_t *bound) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(addr)};
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
    die("bind %s:%u: %s", buf, port, strerror(errno));
  }
  if (listen(s, SOMAXCONN) < 0) die("listen: %s", strerror(errno));
  socklen_t len = sizeof sa;
  if (getsockname(s, (struct sockaddr *)&sa, &len) < 0) die("getsockname: %s", strerror(errno));
  *bound = ntohs(sa.sin_port);
  return s;
}

static void setup_listeners(void) {
  nlisteners = opt.port_mode ? opt.dests : 1;
  if (opt.port_mode) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)nlisteners + FD_RESERVE > rl.rlim_cur)
      die("port mode needs %u listeners, over the open-file limit %llu (less %d spare): use -m addr", nlisteners,
          (unsigned long long)rl.rlim_cur, FD_RESERVE);
  }
  listeners = calloc(nlisteners, sizeof *listeners);
  ports = calloc(nlisteners, sizeof *ports);
  if (!listeners || !ports) die("out of memory");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  for (unsigned i = 0; i < nlisteners; ++i) {
    if (opt.port_mode)
      listeners[i] = make_listener(INADDR_LOOPBACK, opt.port ? opt.port + i : 0, &ports[i]);
    else
      listeners[i] = make_listener(INADDR_ANY, opt.port, &ports[i]);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listeners[i], &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  }
}

/* Accepts and closes until told to stop; each wait is bounded so the stop flag is seen. */
static void *acceptor(void *arg) {
  (void)arg;
  struct epoll_event evs[64];
  while (!atomic_load(&stop)) {
    int n = epoll_wait(epfd, evs, 64, 50);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      int l = listeners[evs[i].data.u32];
      for (int burst = 0; burst < 256; ++burst) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
          if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) break;
          if (errno == EMFILE || errno == ENFILE) die("accept: %s", strerror(errno));
          break;
        }
        close(c);
        atomic_fetch_add(&accepted, 1);
      }
    }
  }
  return NULL;
}

static struct sockaddr_in destination(uint32_t i) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (opt.port_mode) {
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(ports[i]);
  } else {
    sa.sin_addr.s_addr = htonl(opt.first_addr + i);
    sa.sin_port = htons(ports[0]);
  }
  return sa;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  setup_listeners();

  pthread_t th[MAX_THREADS];
  for (unsigned i = 0; i < opt.threads; ++i)
    if (pthread_create(&th[i], NULL, acceptor, NULL)) die("pthread_create failed");

  uint32_t *perm = NULL;
  if (opt.shuffle) {
    perm = malloc((size_t)opt.dests * sizeof *perm);
    if (!perm) die("out of memory");
    for (uint32_t i = 0; i < opt.dests; ++i) perm[i] = i;
    rng_state ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
  }

  const uint64_t total = opt.per_dest ? (uint64_t)opt.dests * opt.per_dest : UINT64_MAX;
  const struct linger lg = {1, 0};
  const double t0 = now_s(), deadline = t0 + opt.max_s;
  uint64_t done = 0;
  for (; done < total; ++done) {
    if (opt.rate > 0) {
      double at = t0 + (double)done / opt.rate;
      if (at >= deadline) break;
      if (at > now_s()) sleep_until(at);
    }
    double now = now_s();
    if (now >= deadline) break;

    uint32_t i = (uint32_t)(done % opt.dests);
    if (perm) {
      if (i == 0) /* a fresh Fisher-Yates permutation every round */
        for (uint32_t j = opt.dests - 1; j > 0; --j) {
          uint32_t k = (uint32_t)(rng() % (j + 1)), t = perm[j];
          perm[j] = perm[k];
          perm[k] = t;
        }
      i = perm[i];
    }
    struct sockaddr_in sa = destination(i);

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket: %s", strerror(errno));
    double wait = deadline - now < CONNECT_TIMEOUT_S ? deadline - now : CONNECT_TIMEOUT_S;
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds a blocking connect() */
    if (opt.rst) setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
      int e = errno;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
      if (e == EINPROGRESS || e == EAGAIN)
        die("connect %s:%u: timed out after %.1f s (connection %llu)", buf, ntohs(sa.sin_port), wait,
            (unsigned long long)done + 1);
      die("connect %s:%u: %s (connection %llu)", buf, ntohs(sa.sin_port), strerror(e), (unsigned long long)done + 1);
    }
    close(s);
  }
  const double elapsed = now_s() - t0;

  /* Let the acceptors close their side of what is already connected. */
  const double drain_end = now_s() + DRAIN_S;
  while (atomic_load(&accepted) < done && now_s() < drain_end) sleep_until(now_s() + 0.005);
  atomic_store(&stop, 1);
  for (unsigned i = 0; i < opt.threads; ++i) pthread_join(th[i], NULL);
  for (unsigned i = 0; i < nlisteners; ++i) close(listeners[i]);
  close(epfd);

  if (opt.per_dest && done < total)
    die("reached -d %g s after %llu of %llu connections", opt.max_s, (unsigned long long)done,
        (unsigned long long)total);
  if (!opt.quiet)
    printf("spread: %llu connections to %u destinations (%s mode, port %u%s) in %.2f s: %.1f/s\n",
           (unsigned long long)done, opt.dests, opt.port_mode ? "port" : "addr", (unsigned)ports[0],
           opt.port_mode && nlisteners > 1 ? "+" : "", elapsed, elapsed > 0 ? (double)done / elapsed : 0.0);
  free(perm);
  free(listeners);
  free(ports);
  return 0;
}
