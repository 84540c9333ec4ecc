/*
 * Soak load client: C on the system libssl, several threads with blocking
 * sockets, each looping over a random mix of client kinds until --seconds
 * have passed, plus one thread that keeps a few silent connections open.
 *
 * usage: client --port P [--seconds S] [--threads N] [--rate R] [--handshake-timeout MS]
 *               [--session-max-age S] [--silent-batch N] [--seed N] [--mix kind=w,...]
 *
 * --mix sets the weights of worker kinds (others keep theirs; 0 turns one off), e.g.
 * --mix reset13=1,full12=0; --silent-batch 0 turns the silent thread off.
 * --rate R paces the worker threads to R connections per second in all (0: as fast as they can):
 * a steady load keeps the server's working set (cached sessions = rate x session timeout) steady,
 * so its RSS can be judged. Connections that start more than 1 s behind schedule are counted
 * ("late"): the machine could not keep up.
 *
 * Kinds (weights in KINDS below):
 *   full12, full13       full handshake (TLS 1.2 / 1.3), offering no session.
 *   resume12             TLS 1.2 with SSL_OP_NO_TICKET: offers the session ID
 *                        the thread saved from an earlier connection.
 *   resume13             TLS 1.3: offers the thread's saved stateful ticket.
 *                        A ticket is used once: the connection's new ticket
 *                        (read with the echo) replaces it.
 *   forged12             TLS 1.2 offering a random 32-byte session ID the
 *                        server never issued: must do a full handshake.
 *   reset12, reset13     handshake (full, or resumed when the thread has a
 *                        session saved), then SO_LINGER {1,0} + close, before
 *                        reading anything: the server sees an RST.
 *   garbage              sends an HTTP request instead of a ClientHello; the
 *                        server must fail the handshake and close.
 *   silent, partial      (own thread) connect and send nothing, or half a
 *                        ClientHello record; the server's handshake timeout
 *                        must close them: counted ok when the server closes
 *                        between half the timeout and the timeout + 5 s.
 * Every full/resume/forged connection writes a small request, reads the whole
 * echo back and compares it, then ends one of three ways at random:
 * close_notify (then waits for the server to close), FIN without close_notify
 * (shutdown(SHUT_WR), then waits for the server to close), or RST.
 *
 * A session is saved only from a connection that completed its echo, so TLS
 * 1.3 tickets have arrived and the server is known to have the session; a
 * saved session older than --session-max-age is dropped (the driver passes
 * half the server's session timeout), so every offered session should still be
 * in the server's cache: each offer counts as "expected_resumed".
 *
 * Prints one JSON object on stdout: per kind attempted/ok/failed/resumed/
 * expected_resumed, endings, and the first errors and resumption misses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

static struct {
  int port, threads, handshake_timeout_ms, silent_batch;
  double seconds, session_max_age, rate;
  unsigned seed;
} opt = { 0, 4, 2000, 4, 30, 15, 500, 0 };

enum kind { FULL12, FULL13, RESUME12, RESUME13, FORGED12, RESET12, RESET13, GARBAGE, SILENT, PARTIAL, NKINDS };
static const char *kind_name[NKINDS] = { "full12", "full13", "resume12", "resume13", "forged12",
                                         "reset12", "reset13", "garbage", "silent", "partial" };
/* Relative weights of the kinds the worker threads draw (silent/partial have their own thread). */
static int KINDS[] = { [FULL12] = 3, [FULL13] = 3, [RESUME12] = 4, [RESUME13] = 4, [FORGED12] = 2,
                             [RESET12] = 2, [RESET13] = 2, [GARBAGE] = 1 };
#define NWORKER_KINDS (GARBAGE + 1)

struct counts { atomic_long attempted, ok, failed, resumed, expected_resumed; };
static struct counts stat[NKINDS];
enum ending { END_CLOSE_NOTIFY, END_FIN, END_RST, NENDINGS };
static const char *ending_name[NENDINGS] = { "close_notify", "fin", "rst" };
static atomic_long endings[NENDINGS];

#define MAX_NOTES 20
static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static char *errors[MAX_NOTES], *misses[MAX_NOTES];
static long nerrors, nmisses;

static SSL_CTX *ctx12, *ctx13;
static int ex_slot; /* SSL ex_data -> struct conn */
static double start, deadline;
static atomic_long slots, late; /* paced connection slots issued; started > 1 s behind schedule */

struct worker {
  pthread_t th;
  int id;
  uint64_t rng;
  SSL_SESSION *saved[2]; /* [0] TLS 1.2, [1] TLS 1.3: newest session from a completed connection */
  double saved_at[2];
};

/* Per connection: which slot a session the server sends may be saved to (-1: none). */
struct conn {
  struct worker *w;
  int slot;
  SSL_SESSION *got; /* newest session received on this connection */
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t rnd(struct worker *w) { /* xorshift64* */
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ULL;
}

static void note(char **list, long *n, const char *fmt, ...) {
  char buf[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
  pthread_mutex_lock(&notes_lock);
  if (*n < MAX_NOTES) list[*n] = strdup(buf);
  (*n)++;
  pthread_mutex_unlock(&notes_lock);
}

/* Counts a failure of kind k with a reason (the OpenSSL error queue when there is one). */
static void fail(enum kind k, const char *what) {
  char ssl_err[200] = "";
  unsigned long e = ERR_peek_last_error();
  if (e) ERR_error_string_n(e, ssl_err, sizeof ssl_err);
  int en = errno;
  note(errors, &nerrors, "%s: %s%s%s%s%s%s", kind_name[k], what, ssl_err[0] ? ": " : "", ssl_err,
       en ? " (" : "", en ? strerror(en) : "", en ? ")" : "");
  ERR_clear_error();
  atomic_fetch_add(&stat[k].failed, 1);
}

static int on_new_session(SSL *ssl, SSL_SESSION *s) {
  struct conn *c = SSL_get_ex_data(ssl, ex_slot);
  if (!c || c->slot < 0) return 0;
  if (c->got) SSL_SESSION_free(c->got);
  c->got = s;
  return 1; /* we keep the reference */
}

static void drop_saved(struct worker *w, int slot) {
  if (w->saved[slot]) SSL_SESSION_free(w->saved[slot]);
  w->saved[slot] = NULL;
}

/* The thread's saved session for slot, or NULL when there is none or it is too old to be sure the
 * server still has it. */
static SSL_SESSION *saved(struct worker *w, int slot) {
  if (w->saved[slot] && now() - w->saved_at[slot] > opt.session_max_age) drop_saved(w, slot);
  return w->saved[slot];
}

static int tcp_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0) return -1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = { 10, 0 }; /* a stuck server fails the connection, never hangs the soak */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static void reset_close(int fd) {
  struct linger l = { 1, 0 };
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

/* Reads the raw socket until the server closes it (EOF or reset). 0 on success, -1 on timeout. */
static int await_close(int fd) {
  char b[4096];
  for (;;) {
    ssize_t r = read(fd, b, sizeof b);
    if (r > 0) continue;
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1; /* SO_RCVTIMEO: 10 s */
    return 0;                                              /* ECONNRESET etc.: closed */
  }
}

/* A random 32-byte session ID the server never issued, on an otherwise plausible TLS 1.2 session. */
static SSL_SESSION *forged_session(SSL *ssl) {
  unsigned char id[32], key[48];
  static const unsigned char suite[2] = { 0xC0, 0x2B }; /* ECDHE-ECDSA-AES128-GCM-SHA256 */
  SSL_SESSION *s = SSL_SESSION_new();
  const SSL_CIPHER *c = SSL_CIPHER_find(ssl, suite);
  if (!s || RAND_bytes(id, sizeof id) != 1 || RAND_bytes(key, sizeof key) != 1 ||
      !SSL_SESSION_set_protocol_version(s, TLS1_2_VERSION) || !SSL_SESSION_set1_id(s, id, sizeof id) ||
      !SSL_SESSION_set1_master_key(s, key, sizeof key) || (c && !SSL_SESSION_set_cipher(s, c))) {
    SSL_SESSION_free(s);
    return NULL;
  }
  SSL_SESSION_set_time(s, (long)time(NULL));
  SSL_SESSION_set_timeout(s, 300);
  return s;
}

/* One connection of a worker kind. */
static void one(struct worker *w, enum kind k) {
  int tls13 = k == FULL13 || k == RESUME13 || k == RESET13;
  int slot = tls13 ? 1 : 0;
  int reset = k == RESET12 || k == RESET13;
  atomic_fetch_add(&stat[k].attempted, 1);
  errno = 0;
  int fd = tcp_connect();
  if (fd < 0) return fail(k, "connect");

  if (k == GARBAGE) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: soak\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) fail(k, "write");
    else if (await_close(fd)) fail(k, "server did not close a non-TLS client within 10 s");
    else atomic_fetch_add(&stat[k].ok, 1);
    close(fd);
    return;
  }

  SSL *ssl = SSL_new(tls13 ? ctx13 : ctx12);
  struct conn c = { w, reset ? -1 : slot, NULL };
  SSL_set_fd(ssl, fd);
  SSL_set_ex_data(ssl, ex_slot, &c);

  /* The session offered, if any, and whether the server should resume it. */
  int offered = 0, expect_resume = 0;
  unsigned char forged_id[32];
  unsigned forged_len = 0;
  if (k == FORGED12) {
    SSL_SESSION *s = forged_session(ssl);
    if (!s) { SSL_free(ssl); close(fd); return fail(k, "cannot build a forged session"); }
    memcpy(forged_id, SSL_SESSION_get_id(s, &forged_len), 32);
    SSL_set_session(ssl, s);
    SSL_SESSION_free(s);
    offered = 1;
  } else if (k == RESUME12 || k == RESUME13 || (reset && (rnd(w) & 1))) {
    SSL_SESSION *s = saved(w, slot);
    if (s) {
      /* Offer a copy: a failed connection would mark the offered object not resumable. */
      SSL_SESSION *copy = SSL_SESSION_dup(s);
      SSL_set_session(ssl, copy);
      SSL_SESSION_free(copy);
      offered = expect_resume = 1;
      /* A stateful TLS 1.3 ticket is for one use: this connection's new ticket replaces it. */
      if (tls13) drop_saved(w, slot);
    }
  }
  if (SSL_connect(ssl) != 1) {
    fail(k, offered ? "handshake (session offered)" : "handshake");
    goto out_reset;
  }
  /* Counted once the handshake is done: a failed one is a failure, not a resumption miss. */
  if (expect_resume) atomic_fetch_add(&stat[k].expected_resumed, 1);
  int reused = SSL_session_reused(ssl);
  if (reused) atomic_fetch_add(&stat[k].resumed, 1);
  if (k == FORGED12) {
    unsigned len = 0;
    const unsigned char *id = SSL_SESSION_get_id(SSL_get_session(ssl), &len);
    if (reused || (len == forged_len && memcmp(id, forged_id, len) == 0)) {
      errno = 0;
      fail(k, "server resumed a session ID it never issued");
      goto out_reset;
    }
  } else if (expect_resume && !reused) {
    note(misses, &nmisses, "%s: offered session (age < %.0f s) not resumed", kind_name[k], opt.session_max_age);
  }

  if (reset) { /* RST right after the handshake, before reading anything (TLS 1.3 tickets included) */
    atomic_fetch_add(&stat[k].ok, 1);
    goto out_reset;
  }

  /* Request and echo: 16..527 bytes. */
  char req[528], got[528];
  int n = 16 + (int)(rnd(w) % 512), have = 0;
  for (int i = 0; i < n; i++) req[i] = (char)('a' + (rnd(w) % 26));
  if (SSL_write(ssl, req, n) != n) {
    fail(k, "write");
    goto out_reset;
  }
  while (have < n) {
    int r = SSL_read(ssl, got + have, n - have);
    if (r <= 0) {
      fail(k, "reading the echo");
      goto out_reset;
    }
    have += r;
  }
  if (memcmp(req, got, (size_t)n) != 0) {
    errno = 0;
    fail(k, "echo differs from the request");
    goto out_reset;
  }
  /* The echo came after the TLS 1.3 tickets: the newest session is complete and cached. Save a
   * copy: SSL_free without close_notify (the FIN and RST endings) marks the connection's own session
   * object not resumable on the client side, and OpenSSL would then offer nothing. */
  if (c.got) {
    drop_saved(w, slot);
    w->saved[slot] = SSL_SESSION_dup(c.got);
    w->saved_at[slot] = now();
  }

  enum ending e = (enum ending)(rnd(w) % NENDINGS);
  atomic_fetch_add(&endings[e], 1);
  if (e == END_RST) {
    atomic_fetch_add(&stat[k].ok, 1);
    goto out_reset;
  }
  if (e == END_CLOSE_NOTIFY) SSL_shutdown(ssl);
  else shutdown(fd, SHUT_WR);
  errno = 0;
  if (await_close(fd)) fail(k, e == END_CLOSE_NOTIFY ? "server did not close within 10 s after close_notify"
                                                     : "server did not close within 10 s after a FIN");
  else atomic_fetch_add(&stat[k].ok, 1);
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  if (c.got) SSL_SESSION_free(c.got);
  return;

out_reset:
  ERR_clear_error();
  SSL_free(ssl);
  reset_close(fd);
  if (c.got) SSL_SESSION_free(c.got);
}

/* Waits for the next connection slot of the paced schedule. */
static void pace(void) {
  if (opt.rate <= 0) return;
  double at = start + atomic_fetch_add(&slots, 1) / opt.rate, t = now();
  if (t - at > 1) atomic_fetch_add(&late, 1);
  if (at > deadline) at = deadline;
  if (at > t) {
    double d = at - t;
    struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
    nanosleep(&ts, NULL);
  }
}

static void *work(void *arg) {
  struct worker *w = arg;
  int total = 0;
  for (int k = 0; k < NWORKER_KINDS; k++) total += KINDS[k];
  for (;;) {
    pace();
    if (now() >= deadline) break;
    int r = (int)(rnd(w) % (uint64_t)total), k = 0;
    while (r >= KINDS[k]) r -= KINDS[k++];
    one(w, (enum kind)k);
  }
  drop_saved(w, 0);
  drop_saved(w, 1);
  return NULL;
}

/* Batches of silent and partial-ClientHello connections, each held until the server closes it. */
static void *silent(void *arg) {
  struct worker *w = arg;
  int n = opt.silent_batch;
  int *fd = calloc((size_t)n, sizeof *fd);
  enum kind *kd = calloc((size_t)n, sizeof *kd);
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  double t_out = opt.handshake_timeout_ms / 1000.0;
  /* A TLS handshake record header announcing 512 bytes, and the first bytes of a ClientHello. */
  static const unsigned char half[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
  while (now() < deadline) {
    double t0 = now();
    int open = 0;
    for (int i = 0; i < n; i++) {
      kd[i] = (rnd(w) & 1) ? SILENT : PARTIAL;
      atomic_fetch_add(&stat[kd[i]].attempted, 1);
      errno = 0;
      fd[i] = tcp_connect();
      if (fd[i] < 0) { fail(kd[i], "connect"); continue; }
      if (kd[i] == PARTIAL && write(fd[i], half, sizeof half) != (ssize_t)sizeof half) {
        fail(kd[i], "write");
        close(fd[i]);
        fd[i] = -1;
        continue;
      }
      open++;
    }
    while (open > 0) {
      double left = t0 + t_out + 5 - now();
      for (int i = 0; i < n; i++) p[i] = (struct pollfd){ fd[i], POLLIN, 0 };
      int r = left > 0 ? poll(p, (nfds_t)n, (int)(left * 1000) + 1) : 0;
      if (r < 0 && errno == EINTR) continue;
      for (int i = 0; i < n; i++) {
        if (fd[i] < 0) continue;
        if (r > 0 && p[i].revents) {
          char b[512];
          ssize_t got = read(fd[i], b, sizeof b);
          if (got > 0) continue; /* an alert before the close: keep waiting for the close */
          double el = now() - t0;
          if (el < t_out / 2) {
            errno = 0;
            char what[96];
            snprintf(what, sizeof what, "server closed after %.2f s, before half the handshake timeout", el);
            fail(kd[i], what);
          } else {
            atomic_fetch_add(&stat[kd[i]].ok, 1);
          }
        } else if (r == 0 && now() >= t0 + t_out + 5) {
          errno = 0;
          fail(kd[i], "server did not close within the handshake timeout + 5 s");
        } else {
          continue;
        }
        close(fd[i]);
        fd[i] = -1;
        open--;
      }
    }
  }
  free(fd);
  free(kd);
  free(p);
  return NULL;
}

static void usage(void);

static void set_mix(const char *spec) {
  char *copy = strdup(spec), *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    int k = 0;
    if (!eq) usage();
    *eq = 0;
    while (k < NWORKER_KINDS && strcmp(kind_name[k], item)) k++;
    if (k == NWORKER_KINDS || atoi(eq + 1) < 0) usage();
    KINDS[k] = atoi(eq + 1);
  }
  free(copy);
}

static void usage(void) {
  fprintf(stderr, "usage: client --port P [--seconds S] [--threads N] [--rate R] [--handshake-timeout MS] "
                  "[--session-max-age S] [--silent-batch N] [--seed N] [--mix kind=w,...]\n");
  exit(2);
}

static SSL_CTX *client_ctx(int version) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(c, version);
  SSL_CTX_set_max_proto_version(c, version);
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL); /* self-signed soak certificate */
  if (version == TLS1_2_VERSION) SSL_CTX_set_options(c, SSL_OP_NO_TICKET); /* resume by session ID */
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, on_new_session);
  return c;
}

static void print_list(const char *name, char **list, long n) {
  printf("\"%s\":[", name);
  for (long i = 0; i < n && i < MAX_NOTES; i++) printf("%s\"%s\"", i ? "," : "", list[i]);
  printf("],\"%s_total\":%ld", name, n);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    i++;
    if (!strcmp(k, "--port")) opt.port = atoi(v);
    else if (!strcmp(k, "--seconds")) opt.seconds = atof(v);
    else if (!strcmp(k, "--threads")) opt.threads = atoi(v);
    else if (!strcmp(k, "--rate")) opt.rate = atof(v);
    else if (!strcmp(k, "--handshake-timeout")) opt.handshake_timeout_ms = atoi(v);
    else if (!strcmp(k, "--session-max-age")) opt.session_max_age = atof(v);
    else if (!strcmp(k, "--silent-batch")) opt.silent_batch = atoi(v);
    else if (!strcmp(k, "--seed")) opt.seed = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--mix")) set_mix(v);
    else usage();
  }
  int weights = 0;
  for (int k = 0; k < NWORKER_KINDS; k++) weights += KINDS[k];
  if (!opt.port || weights <= 0 || opt.threads < 1 || opt.threads > 256 || opt.silent_batch < 0 || opt.handshake_timeout_ms <= 0 ||
      opt.rate < 0)
    usage();

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  signal(SIGPIPE, SIG_IGN);
  ctx12 = client_ctx(TLS1_2_VERSION);
  ctx13 = client_ctx(TLS1_3_VERSION);
  ex_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  uint64_t seed = opt.seed ? opt.seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

  double t0 = start = now();
  deadline = t0 + opt.seconds;
  int nw = opt.threads + (opt.silent_batch > 0);
  struct worker *ws = calloc((size_t)nw, sizeof *ws);
  for (int i = 0; i < nw; i++) {
    ws[i].id = i;
    ws[i].rng = (seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)) | 1;
    pthread_create(&ws[i].th, NULL, i < opt.threads ? work : silent, &ws[i]);
  }
  for (int i = 0; i < nw; i++) pthread_join(ws[i].th, NULL);
  double el = now() - t0;

  long total = 0;
  printf("{\"elapsed_s\":%.3f,\"threads\":%d,\"rate\":%.1f,\"late\":%ld,\"seed\":%llu,\"libssl\":\"%s\",\"kinds\":{",
         el, opt.threads, opt.rate, (long)late, (unsigned long long)seed, OpenSSL_version(OPENSSL_VERSION));
  for (int k = 0; k < NKINDS; k++) {
    total += stat[k].attempted;
    printf("%s\"%s\":{\"attempted\":%ld,\"ok\":%ld,\"failed\":%ld,\"resumed\":%ld,\"expected_resumed\":%ld}",
           k ? "," : "", kind_name[k], (long)stat[k].attempted, (long)stat[k].ok, (long)stat[k].failed,
           (long)stat[k].resumed, (long)stat[k].expected_resumed);
  }
  printf("},\"endings\":{");
  for (int e = 0; e < NENDINGS; e++) printf("%s\"%s\":%ld", e ? "," : "", ending_name[e], (long)endings[e]);
  printf("},\"connections\":%ld,\"conn_per_s\":%.1f,", total, total / el);
  print_list("errors", errors, nerrors);
  printf(",");
  print_list("misses", misses, nmisses);
  printf("}\n");
  return 0;
}
