/* storm: saturating loopback connect storm (N connecting threads, M accepting threads) that prints one key=value summary line. */
/*
 * Closed loop, as a gateway's upstream side loads a machine: each client
 * thread connects to one listener on 127.0.0.1, waits for the connection to
 * finish closing, and connects again at once, so with as many threads as
 * CPUs the CPUs stay busy in the kernel's connect, accept and close paths.
 *
 *   -c server  the accepting side closes first: accept(), close(); the
 *              client reads EOF and closes. TIME_WAIT is on the server side.
 *   -c client  the connecting side closes first: connect(), shutdown(WR),
 *              read EOF, close(); the acceptor reads EOF and closes.
 *              TIME_WAIT piles up on the client side, so ephemeral ports are
 *              recycled: run it where tcp_tw_reuse=1 and ip_local_port_range
 *              is wide, or connect() fails with EADDRNOTAVAIL.
 *
 * Runs for -d SECONDS (default 5, at most 60), or until -n CONNECTIONS have
 * completed (split evenly over the client threads; -d still bounds the run).
 * A failed socket()/connect()/read() is counted by errno and the thread goes
 * on. A watchdog ends the process if anything blocks past the deadline plus
 * GRACE_S. Nothing leaves the loopback interface.
 *
 *   storm [-c server|client] [-t CLIENT_THREADS] [-a ACCEPT_THREADS]
 *         [-d SECONDS] [-n CONNECTIONS] [-b BACKLOG]
 *
 * Prints on stdout, one line:
 *   storm close=server clients=2 acceptors=2 conns=N duration_s=S
 *   conns_per_s=R errors=E errnos=EADDRNOTAVAIL:3,... accept_errors=A tw_end=T
 * (errnos is "-" when there were none; tw_end is the namespace's TIME_WAIT
 * sockets at the end, from /proc/net/sockstat, or -1). Exit 0 when the run
 * completed, 1 on a setup failure (one line on stderr), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SECONDS 60.0
#define GRACE_S 10       /* past the deadline, how long a blocked thread may hold the run */
#define JOIN_WAIT_S 2.0  /* after the stop, how long the clients get to return */
#define ERRNO_SLOTS 256  /* errnos counted one by one; larger ones go to the last slot */

enum close_side { CLOSE_SERVER, CLOSE_CLIENT };

static struct {
  enum close_side closer;
  unsigned clients, acceptors;
  double seconds;
  uint64_t count; /* 0 = run for the duration */
  int backlog;
} opt = {CLOSE_SERVER, 2, 2, 5.0, 0, 4096};

/* Each thread writes only its own slot, padded to a cache line so the
 * counters do not bounce between CPUs; the main thread reads them after the
 * stop. */
struct thread_stats {
  _Alignas(64) atomic_uint_fast64_t done;
  atomic_uint_fast64_t errors[ERRNO_SLOTS];
  pthread_t tid;
  uint64_t quota; /* count mode: this thread's share */
  atomic_int finished;
};

static struct thread_stats clients[MAX_THREADS];
static struct thread_stats acceptors[MAX_THREADS];
static atomic_int stop;
static int listener = -1;
static struct sockaddr_in target;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void count_error(struct thread_stats *st, int err) {
  unsigned slot = err > 0 && err < ERRNO_SLOTS - 1 ? (unsigned)err : ERRNO_SLOTS - 1;
  atomic_fetch_add_explicit(&st->errors[slot], 1, memory_order_relaxed);
}

static void bump(struct thread_stats *st) {
  /* Single writer: a relaxed load and store, no locked instruction. */
  atomic_store_explicit(&st->done, atomic_load_explicit(&st->done, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Reads until EOF or an error; 0 on EOF. The peer sends nothing, so the
 * first read normally returns 0. */
static int read_eof(int fd) {
  char buf[64];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0 && errno != EINTR) return errno;
  }
}

static void *client_main(void *arg) {
  struct thread_stats *st = arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    if (st->quota && atomic_load_explicit(&st->done, memory_order_relaxed) >= st->quota) break;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      count_error(st, errno);
      continue;
    }
    if (connect(fd, (const struct sockaddr *)&target, sizeof target) != 0) {
      count_error(st, errno);
      close(fd);
      continue;
    }
    if (opt.closer == CLOSE_CLIENT && shutdown(fd, SHUT_WR) != 0) {
      count_error(st, errno);
      close(fd);
      continue;
    }
    int err = read_eof(fd);
    close(fd);
    if (err)
      count_error(st, err);
    else
      bump(st);
  }
  atomic_store(&st->finished, 1);
  return NULL;
}

static void *acceptor_main(void *arg) {
  struct thread_stats *st = arg;
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR) count_error(st, errno);
      if (errno == EMFILE || errno == ENFILE) usleep(1000);
      continue;
    }
    if (opt.closer == CLOSE_CLIENT) {
      int err = read_eof(fd);
      if (err) count_error(st, err);
    }
    close(fd);
    bump(st);
  }
  return NULL;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "storm: a thread stayed blocked past the deadline: aborted\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(1);
}

static _Noreturn void die(const char *what) {
  fprintf(stderr, "storm: %s: %s\n", what, strerror(errno));
  exit(1);
}

static _Noreturn void usage(const char *why) {
  fprintf(stderr,
          "storm: %s\nusage: storm [-c server|client] [-t CLIENT_THREADS] [-a ACCEPT_THREADS] [-d SECONDS] "
          "[-n CONNECTIONS] [-b BACKLOG]\n",
          why);
  exit(2);
}

static unsigned parse_threads(const char *s, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 1 || v > MAX_THREADS) usage(what);
  return (unsigned)v;
}

static void parse_args(int argc, char **argv) {
  int c;
  char *end;
  while ((c = getopt(argc, argv, "c:t:a:d:n:b:")) != -1) {
    switch (c) {
      case 'c':
        if (!strcmp(optarg, "server"))
          opt.closer = CLOSE_SERVER;
        else if (!strcmp(optarg, "client"))
          opt.closer = CLOSE_CLIENT;
        else
          usage("-c takes server or client");
        break;
      case 't': opt.clients = parse_threads(optarg, "-t takes 1..64 client threads"); break;
      case 'a': opt.acceptors = parse_threads(optarg, "-a takes 1..64 accept threads"); break;
      case 'd':
        opt.seconds = strtod(optarg, &end);
        if (*end || !(opt.seconds > 0) || opt.seconds > MAX_SECONDS) usage("-d takes seconds in (0, 60]");
        break;
      case 'n':
        opt.count = strtoull(optarg, &end, 10);
        if (*end || opt.count == 0) usage("-n takes a positive connection count");
        break;
      case 'b':
        opt.backlog = (int)strtol(optarg, &end, 10);
        if (*end || opt.backlog < 1) usage("-b takes a positive backlog");
        break;
      default: usage("unknown option");
    }
  }
  if (optind != argc) usage("unexpected argument");
}

/* TIME_WAIT sockets of this network namespace ("TCP: inuse 5 orphan 0 tw 7 ..."). */
static long time_wait_now(void) {
  FILE *f = fopen("/proc/net/sockstat", "r");
  if (!f) return -1;
  char line[256];
  long tw = -1;
  while (fgets(line, sizeof line, f)) {
    const char *p = strncmp(line, "TCP:", 4) ? NULL : strstr(line, " tw ");
    if (p) tw = strtol(p + 4, NULL, 10);
  }
  fclose(f);
  return tw;
}

static void start_threads(struct thread_stats *set, unsigned n, void *(*fn)(void *)) {
  for (unsigned i = 0; i < n; i++) {
    int err = pthread_create(&set[i].tid, NULL, fn, &set[i]);
    if (err) {
      errno = err;
      die("pthread_create");
    }
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);

  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1;
  if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("SO_REUSEADDR");
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (const struct sockaddr *)&target, sizeof target) != 0) die("bind 127.0.0.1");
  if (listen(listener, opt.backlog) != 0) die("listen");
  socklen_t len = sizeof target;
  if (getsockname(listener, (struct sockaddr *)&target, &len) != 0) die("getsockname");

  if (opt.count)
    for (unsigned i = 0; i < opt.clients; i++)
      clients[i].quota = opt.count / opt.clients + (i < opt.count % opt.clients ? 1 : 0);

  signal(SIGALRM, on_alarm);
  alarm((unsigned)opt.seconds + GRACE_S);

  start_threads(acceptors, opt.acceptors, acceptor_main);
  const double t0 = now_s();
  const double deadline = t0 + opt.seconds;
  start_threads(clients, opt.clients, client_main);

  /* The stop is observed here, every millisecond: at the deadline, or once
   * every client has finished its quota. */
  double t1;
  for (;;) {
    t1 = now_s();
    if (t1 >= deadline) break;
    unsigned finished = 0;
    for (unsigned i = 0; i < opt.clients; i++) finished += (unsigned)atomic_load(&clients[i].finished);
    if (finished == opt.clients) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  atomic_store(&stop, 1);

  /* Connections are counted up to the stop; what completes after it is not. */
  uint64_t conns = 0, errors = 0, accept_errors = 0;
  uint64_t by_errno[ERRNO_SLOTS] = {0};
  for (unsigned i = 0; i < opt.clients; i++) {
    conns += atomic_load(&clients[i].done);
    for (unsigned e = 0; e < ERRNO_SLOTS; e++) by_errno[e] += atomic_load(&clients[i].errors[e]);
  }
  for (unsigned e = 0; e < ERRNO_SLOTS; e++) errors += by_errno[e];
  for (unsigned i = 0; i < opt.acceptors; i++)
    for (unsigned e = 0; e < ERRNO_SLOTS; e++) accept_errors += atomic_load(&acceptors[i].errors[e]);

  /* A client blocked in connect() or read() past JOIN_WAIT_S is left to the
   * process exit; the acceptors block in accept() and are never joined. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)JOIN_WAIT_S;
  unsigned stuck = 0;
  for (unsigned i = 0; i < opt.clients; i++)
    if (pthread_timedjoin_np(clients[i].tid, NULL, &until) != 0) stuck++;

  char errnos[1024] = "-";
  size_t off = 0;
  for (unsigned e = 0; e < ERRNO_SLOTS; e++) {
    if (!by_errno[e]) continue;
    const char *name = e == ERRNO_SLOTS - 1 ? "OTHER" : strerrorname_np((int)e);
    int n = snprintf(errnos + off, sizeof errnos - off, "%s%s:%llu", off ? "," : "", name ? name : "E?",
                     (unsigned long long)by_errno[e]);
    if (n < 0 || (size_t)n >= sizeof errnos - off) break;
    off += (size_t)n;
  }

  const double elapsed = t1 - t0;
  printf("storm close=%s clients=%u acceptors=%u conns=%llu duration_s=%.3f conns_per_s=%.0f errors=%llu "
         "errnos=%s accept_errors=%llu stuck=%u tw_end=%ld\n",
         opt.closer == CLOSE_SERVER ? "server" : "client", opt.clients, opt.acceptors, (unsigned long long)conns,
         elapsed, elapsed > 0 ? (double)conns / elapsed : 0.0, (unsigned long long)errors, errnos,
         (unsigned long long)accept_errors, stuck, time_wait_now());
  fflush(stdout);
  /* The acceptors are still blocked in accept(): leave without joining. */
  _exit(0);
}
