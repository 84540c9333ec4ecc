/*
 * TLS load generator for the bench: C on libssl, a few threads with blocking
 * sockets (each thread = one connection in flight), far cheaper per handshake
 * than the servers it drives. It reports its own CPU so that can be shown.
 *
 * usage: loadgen --port P [--tls 1.2|1.3] [--mode full|resume|resume-any|resume-fresh|rr|hs|bulk|idle]
 *                [--conns N] [--time S] [--concurrency C] [--bytes B] [--hold S] [--from PORT]
 *                [--request B]
 *   full    N handshakes, never offering a session.
 *   resume  each thread primes one session with a full handshake, then every
 *           connection offers its latest session (TLS 1.2: session ID or
 *           ticket; TLS 1.3: the newest ticket the server sent).
 *   resume-any  one session for all threads: every connection offers the
 *           newest session any connection got, whichever server process or
 *           thread issued it (after C priming full handshakes). Measures how
 *           often a returning client resumes when it may land anywhere: a
 *           connection that does not resume brings a new newest session.
 *   resume-fresh  first gets N distinct sessions from the server on --from PORT
 *           (N full handshakes there on 8 threads, before PRIMED), then each timed
 *           connection to --port offers one of them, each exactly once: the
 *           measured server has never seen any of them (for a shared session
 *           store: every offered session misses its internal cache).
 *   rr      request/reply/close, what an HTTP-style connection does: as resume,
 *           but each connection writes one request of --request bytes (100),
 *           reads the whole reply (the echo), sends close_notify and reads
 *           the server's close_notify through TLS. A connection whose server
 *           closes without close_notify counts as failed ("unclean" counts them).
 *   hs      handshake only (TLS 1.2): as resume, but each connection hangs up
 *           right after the handshake without data or close_notify, as
 *           openssl s_time does (the per-handshake instruction count).
 *   bulk    each connection echoes B bytes (default 100 MiB) through the server.
 *   idle    opens N connections, prints "HOLDING n", holds them until a line
 *           on stdin or --hold seconds, then closes them.
 * Every connection writes one byte and reads the echo (this also receives
 * TLS 1.3 tickets), then sends close_notify and waits for the server's close.
 * With --sync, prints "PRIMED" after priming and waits for a stdin line, so the
 * caller can sample the server's CPU around the timed phase only.
 * Loops stop at N connections or S seconds, whichever comes first.
 * Prints one JSON object on stdout; "hs_us" has the client-observed latency
 * of the timed connections in microseconds (TCP connect + TLS handshake, up to
 * SSL_connect's return: median, p90, p99, mean, max).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static struct {
  int port, tls, concurrency, sync, from;
  const char *mode;
  long conns;
  double time, hold;
  long long bytes;
  int request;
} opt = { 0, 13, 1, 0, 0, "resume", 1000, 10, 30, 100LL << 20, 100 };

static SSL_CTX *ctx;
static int ex_slot; /* SSL ex_data index -> struct worker */
static int any;     /* --mode resume-any: one shared session, below */
static SSL_SESSION *any_sess;
static pthread_mutex_t any_lock = PTHREAD_MUTEX_INITIALIZER;
static int fresh;   /* --mode resume-fresh: sessions from --from, each offered once */
static SSL_SESSION **fresh_sess;
static long fresh_n;
static int rr, hs; /* --mode rr / hs: the connection's data exchange and close */
static atomic_long issued, done, resumed, failed, offered, primed_next, unclean;
static atomic_llong moved;
static double deadline;
static const char *proto = "", *cipher = "";

struct worker {
  pthread_t th;
  SSL_SESSION *sess; /* latest session from the server */
  SSL_SESSION *use;  /* resume-fresh: the session to offer on the next connection */
  int timed;         /* record latencies (the timed phase) */
  double *lat;       /* per-connection handshake latency, seconds */
  long nlat, caplat;
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* Keep the newest session the server gave (TLS 1.3 sends tickets after the
 * handshake; a stateful one may be single-use). */
static int on_new_session(SSL *ssl, SSL_SESSION *s) {
  struct worker *w = SSL_get_ex_data(ssl, ex_slot);
  if (!w) return 0;
  if (any) {
    pthread_mutex_lock(&any_lock);
    if (any_sess) SSL_SESSION_free(any_sess);
    any_sess = s;
    pthread_mutex_unlock(&any_lock);
    return 1;
  }
  if (w->sess) SSL_SESSION_free(w->sess);
  w->sess = s;
  return 1; /* we keep the reference */
}

static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = { 10, 0 }; /* a stuck server must not hang the bench */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
  return fd;
}

/* Handshake + one-byte echo. Returns the SSL or NULL (counted as failed). */
static void record(struct worker *w, double seconds) {
  if (w->nlat == w->caplat) {
    w->caplat = w->caplat ? 2 * w->caplat : 4096;
    w->lat = realloc(w->lat, (size_t)w->caplat * sizeof *w->lat);
  }
  w->lat[w->nlat++] = seconds;
}

/* rr: one request of opt.request bytes, the whole reply back (the servers echo). */
static char req[65536];
static int request_reply(SSL *ssl) {
  char buf[16384];
  int got = 0, n;
  if (SSL_write(ssl, req, opt.request) != opt.request) return 0;
  while (got < opt.request) {
    if ((n = SSL_read(ssl, buf, sizeof buf)) <= 0) return 0;
    got += n;
  }
  return 1;
}

/* What open_conn returns for a timed hs connection: done, and already hung up. */
static char hung_up_mark;
#define HUNG_UP ((SSL *)&hung_up_mark)

static SSL *open_conn_to(struct worker *w, int offer, int port) {
  double t0 = now();
  int fd = tcp_connect(port);
  if (fd < 0) { atomic_fetch_add(&failed, 1); return NULL; }
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_ex_data(ssl, ex_slot, w);
  if (offer) {
    /* Offer a copy: OpenSSL's client marks a TLS 1.3 session it resumed with
     * as not resumable (single-use tickets), and servers such as node:tls
     * send no new ticket on a resumed connection. The kept one stays fresh. */
    SSL_SESSION *copy = NULL;
    if (fresh) {
      copy = w->use; /* never offered before: no copy needed */
      w->use = NULL;
    } else if (any) {
      pthread_mutex_lock(&any_lock);
      if (any_sess) copy = SSL_SESSION_dup(any_sess);
      pthread_mutex_unlock(&any_lock);
    } else if (w->sess) {
      copy = SSL_SESSION_dup(w->sess);
    }
    if (copy) {
      SSL_set_session(ssl, copy);
      SSL_SESSION_free(copy);
      atomic_fetch_add(&offered, 1);
    }
  }
  char b = 'x';
  int ok = SSL_connect(ssl);
  if (ok == 1 && w->timed) record(w, now() - t0);
  if (ok == 1 && w->timed && (rr || hs)) ok = 2; /* the timed connections of rr / hs: below */
  if (ok == 2 && hs) {
    /* What s_time does: no data, no close_notify, just hang up. */
    if (SSL_session_reused(ssl)) atomic_fetch_add(&resumed, 1);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    close(fd);
    return HUNG_UP;
  }
  if (ok == 2 ? !request_reply(ssl) : ok != 1 || SSL_write(ssl, &b, 1) != 1 || SSL_read(ssl, &b, 1) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  if (SSL_session_reused(ssl)) atomic_fetch_add(&resumed, 1);
  proto = SSL_get_version(ssl);
  cipher = SSL_get_cipher_name(ssl);
  return ssl;
}

static SSL *open_conn(struct worker *w, int offer) { return open_conn_to(w, offer, opt.port); }

/* close_notify, then wait for the server's close so the server, not the
 * client, finishes the connection the normal way. The drain reads the raw
 * socket: an SSL-level error there (say, EOF without the server's
 * close_notify) would mark the shared session not resumable. */
static void close_conn(SSL *ssl) {
  int fd = SSL_get_fd(ssl);
  char b[512];
  SSL_shutdown(ssl);
  if (rr) {
    /* close_notify both ways: the server's comes through TLS (this context does not take a bare
     * EOF for one: no SSL_OP_IGNORE_UNEXPECTED_EOF in rr mode). */
    int n;
    while ((n = SSL_read(ssl, b, sizeof b)) > 0) {}
    if (SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN) {
      atomic_fetch_add(&unclean, 1);
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); /* keep the session usable */
    }
  }
  while (read(fd, b, sizeof b) > 0) {}
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
}

/* Echo opt.bytes through the server on a non-blocking socket, writing and
 * reading interleaved, never more than 4 MiB in flight. */
static int retry(SSL *ssl, int r) {
  int e = SSL_get_error(ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

static void bulk(SSL *ssl) {
  static const long long chunk = 16384, window = 4 << 20;
  unsigned char *out = calloc(1, chunk), *in = malloc(chunk);
  long long sent = 0, got = 0;
  int fd = SSL_get_fd(ssl), fl = fcntl(fd, F_GETFL), r;
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  while (got < opt.bytes && now() < deadline) {
    int progress = 0, can_send = sent < opt.bytes && sent - got < window;
    if (can_send) { /* a retried write repeats the same buffer and length */
      int n = (int)(opt.bytes - sent < chunk ? opt.bytes - sent : chunk);
      if ((r = SSL_write(ssl, out, n)) > 0) { sent += r; progress = 1; }
      else if (!retry(ssl, r)) break;
    }
    while ((r = SSL_read(ssl, in, (int)chunk)) > 0) { got += r; progress = 1; }
    if (!retry(ssl, r)) break;
    if (!progress) {
      struct pollfd p = { fd, POLLIN | (can_send ? POLLOUT : 0), 0 };
      poll(&p, 1, 100);
    }
  }
  ERR_clear_error();
  fcntl(fd, F_SETFL, fl);
  atomic_fetch_add(&moved, got);
  free(out);
  free(in);
}

/* resume-fresh priming: full handshakes on --from, keeping each one's newest
 * session (TLS 1.3: the last ticket of the connection). */
static void *prime_fresh(void *arg) {
  struct worker *w = arg;
  long i;
  while ((i = atomic_fetch_add(&primed_next, 1)) < fresh_n) {
    SSL *ssl = open_conn_to(w, 0, opt.from);
    if (!ssl) continue;
    close_conn(ssl);
    fresh_sess[i] = w->sess; /* NULL when the server gave none */
    w->sess = NULL;
  }
  return NULL;
}

static void *run(void *arg) {
  struct worker *w = arg;
  int offer = strcmp(opt.mode, "resume") == 0 || any || fresh || rr || hs;
  w->timed = 1;
  for (;;) {
    long i = atomic_fetch_add(&issued, 1);
    if (i >= opt.conns || now() >= deadline) break;
    if (fresh) {
      if (i >= fresh_n) break;
      w->use = fresh_sess[i];
      fresh_sess[i] = NULL;
    }
    SSL *ssl = open_conn(w, offer);
    if (w->use) { SSL_SESSION_free(w->use); w->use = NULL; } /* not offered: connect failed */
    if (!ssl) continue;
    if (ssl == HUNG_UP) { atomic_fetch_add(&done, 1); continue; }
    if (strcmp(opt.mode, "bulk") == 0) bulk(ssl);
    close_conn(ssl);
    atomic_fetch_add(&done, 1);
  }
  return NULL;
}

static void idle(void) {
  SSL **held = calloc((size_t)opt.conns, sizeof *held);
  struct worker w = { 0 };
  w.timed = 1;
  long n = 0;
  for (long i = 0; i < opt.conns && now() < deadline; i++)
    if ((held[n] = open_conn(&w, 0))) n++;
  done = n;
  printf("HOLDING %ld\n", n);
  fflush(stdout);
  struct pollfd p = { 0, POLLIN, 0 };
  poll(&p, 1, (int)(opt.hold * 1000));
  for (long i = 0; i < n; i++) close_conn(held[i]);
  free(held);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile of sorted xs (nearest rank), in microseconds. */
static double quantile_us(const double *xs, long n, double q) {
  if (!n) return 0;
  long i = (long)(q * n + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return xs[i] * 1e6;
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen --port P [--tls 1.2|1.3] [--mode full|resume|resume-any|resume-fresh|rr|hs|bulk|idle] "
                  "[--conns N] [--time S] [--concurrency C] [--bytes B] [--hold S] [--from PORT] [--request B] [--sync]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(k, "--sync")) { opt.sync = 1; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(k, "--port")) opt.port = atoi(v);
    else if (!strcmp(k, "--tls")) opt.tls = strcmp(v, "1.2") ? 13 : 12;
    else if (!strcmp(k, "--mode")) opt.mode = v;
    else if (!strcmp(k, "--conns")) opt.conns = atol(v);
    else if (!strcmp(k, "--time")) opt.time = atof(v);
    else if (!strcmp(k, "--concurrency")) opt.concurrency = atoi(v);
    else if (!strcmp(k, "--bytes")) opt.bytes = atoll(v);
    else if (!strcmp(k, "--hold")) opt.hold = atof(v);
    else if (!strcmp(k, "--from")) opt.from = atoi(v);
    else if (!strcmp(k, "--request")) opt.request = atoi(v);
    else usage();
  }
  if (!opt.port || opt.concurrency < 1 || opt.concurrency > 256 || opt.request < 1 || opt.request > 65536) usage();
  rr = !strcmp(opt.mode, "rr");
  memset(req, 'r', sizeof req);
  hs = !strcmp(opt.mode, "hs");
  if (hs && opt.tls != 12) {
    /* A TLS 1.3 client that hangs up unread never sees the ticket it needs next time. */
    fprintf(stderr, "loadgen: --mode hs is TLS 1.2 only\n");
    return 2;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  signal(SIGPIPE, SIG_IGN);

  ctx = SSL_CTX_new(TLS_client_method());
  int v = opt.tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, v);
  SSL_CTX_set_max_proto_version(ctx, v);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed bench cert */
  if (!rr) SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  ex_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);

  struct worker *ws = calloc((size_t)opt.concurrency, sizeof *ws);
  deadline = now() + opt.time + (opt.sync ? 3600 : 0);
  any = !strcmp(opt.mode, "resume-any");
  fresh = !strcmp(opt.mode, "resume-fresh");
  if (fresh) {
    if (!opt.from) { fprintf(stderr, "loadgen: resume-fresh needs --from PORT\n"); return 2; }
    fresh_n = opt.conns;
    fresh_sess = calloc((size_t)fresh_n, sizeof *fresh_sess);
    /* 8 threads whatever --concurrency is: priming is untimed, only quicker so */
    enum { PRIMERS = 8 };
    struct worker *ps = calloc(PRIMERS, sizeof *ps);
    for (int i = 0; i < PRIMERS; i++) pthread_create(&ps[i].th, NULL, prime_fresh, &ps[i]);
    for (int i = 0; i < PRIMERS; i++) pthread_join(ps[i].th, NULL);
    long missing = 0;
    for (long i = 0; i < fresh_n; i++) missing += !fresh_sess[i];
    if (missing || failed) {
      fprintf(stderr, "loadgen: priming from port %d: %ld of %ld connections gave no session (%ld failed)\n",
              opt.from, missing, fresh_n, (long)failed);
      return 1;
    }
  }
  if (!strcmp(opt.mode, "resume") || any || rr || hs)
    for (int i = 0; i < opt.concurrency; i++) { /* prime: one full handshake each */
      SSL *ssl = open_conn(&ws[i], 0);
      if (!ssl) { fprintf(stderr, "loadgen: priming connection failed\n"); return 1; }
      close_conn(ssl);
    }
  if (opt.sync) {
    printf("PRIMED\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;
  }
  resumed = failed = offered = unclean = 0;
  double t0 = now(), c0 = cpu_seconds();
  deadline = t0 + opt.time;

  if (!strcmp(opt.mode, "idle")) {
    deadline = t0 + opt.time;
    idle();
  } else if (!strcmp(opt.mode, "full") || !strcmp(opt.mode, "resume") || any || fresh || rr || hs ||
             !strcmp(opt.mode, "bulk")) {
    for (int i = 0; i < opt.concurrency; i++) pthread_create(&ws[i].th, NULL, run, &ws[i]);
    for (int i = 0; i < opt.concurrency; i++) pthread_join(ws[i].th, NULL);
  } else {
    usage();
  }
  double el = now() - t0, cpu = cpu_seconds() - c0;
  long n = done;
  /* Handshake latency of the timed connections, all threads together. */
  long nl = 0;
  for (int i = 0; i < opt.concurrency; i++) nl += ws[i].nlat;
  double *lat = malloc((size_t)(nl ? nl : 1) * sizeof *lat), sum = 0;
  nl = 0;
  for (int i = 0; i < opt.concurrency; i++)
    for (long j = 0; j < ws[i].nlat; j++) sum += (lat[nl++] = ws[i].lat[j]);
  qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
  printf("{\"mode\":\"%s\",\"tls\":\"%s\",\"protocol\":\"%s\",\"cipher\":\"%s\",\"concurrency\":%d,"
         "\"connections\":%ld,\"resumed\":%ld,\"offered\":%ld,\"failed\":%ld,\"unclean\":%ld,\"elapsed_s\":%.4f,\"conn_per_s\":%.1f,"
         "\"bytes\":%lld,\"mb_per_s\":%.2f,\"cpu_s\":%.4f,\"cpu_ms_per_conn\":%.4f,"
         "\"hs_us\":{\"n\":%ld,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"mean\":%.1f,\"max\":%.1f}}\n",
         opt.mode, opt.tls == 12 ? "1.2" : "1.3", proto, cipher, opt.concurrency, n, (long)resumed,
         (long)offered, (long)(failed + unclean), (long)unclean, el, n / el, (long long)moved, moved / el / 1048576.0, cpu,
         n ? cpu * 1000 / n : 0.0, nl, quantile_us(lat, nl, 0.5), quantile_us(lat, nl, 0.9),
         quantile_us(lat, nl, 0.99), nl ? sum / nl * 1e6 : 0.0, nl ? lat[nl - 1] * 1e6 : 0.0);
  return 0;
}
