/*
 * Plain C OpenSSL echo server: the practical upper limit for the bench.
 *
 * One thread, non-blocking sockets on epoll (like node's event loop, and able
 * to hold 1,000 idle connections). Session cache: OpenSSL's internal
 * SSL_CTX cache, session id context set, SSL_OP_NO_TICKET (TLS 1.2 session
 * IDs, TLS 1.3 stateful tickets).
 *
 * usage: c_server PORT CERT KEY [tickets]
 *   PORT 0 picks a free port. Prints "READY <port>" once listening and
 *   "STATS {...}" on SIGTERM/SIGINT before exiting 0 (so callgrind dumps).
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum { HANDSHAKE, OPEN, CLOSING };

struct conn {
  int fd;
  SSL *ssl;
  int state;
  size_t len, off; /* pending echo bytes in buf[off..len) */
  unsigned char buf[16384];
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int epfd;

static void watch(struct conn *c, uint32_t ev) {
  struct epoll_event e = { .events = ev, .data.ptr = c };
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void drop(struct conn *c) {
  /* A connection that ends without our close_notify (peer reset, as s_time
   * does) would make SSL_free evict its session: mark it shut down first. */
  if (c->state != HANDSHAKE)
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(c->ssl);
  close(c->fd);
  free(c);
}

/* Returns 0 when c was freed. Otherwise c waits for the epoll event the SSL
 * call asked for. */
static int want(struct conn *c, int r) {
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ: watch(c, EPOLLIN); return 1;
  case SSL_ERROR_WANT_WRITE: watch(c, EPOLLOUT); return 1;
  default: ERR_clear_error(); drop(c); return 0;
  }
}

static void drive(struct conn *c) {
  for (;;) {
    int r;
    if (c->state == HANDSHAKE) {
      if ((r = SSL_accept(c->ssl)) != 1) { want(c, r); return; }
      c->state = OPEN;
    } else if (c->state == CLOSING) {
      if ((r = SSL_shutdown(c->ssl)) < 0) { want(c, r); return; }
      drop(c);
      return;
    } else if (c->off < c->len) {
      if ((r = SSL_write(c->ssl, c->buf + c->off, (int)(c->len - c->off))) <= 0) {
        want(c, r);
        return;
      }
      c->off += (size_t)r;
    } else {
      r = SSL_read(c->ssl, c->buf, sizeof c->buf);
      if (r > 0) {
        c->off = 0;
        c->len = (size_t)r;
      } else if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
        c->state = CLOSING; /* peer sent close_notify: answer it */
      } else {
        want(c, r);
        return;
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s PORT CERT KEY [tickets]\n", argv[0]);
    return 2;
  }
  int tickets = argc > 4 && strcmp(argv[4], "tickets") == 0;

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* IGNORE_UNEXPECTED_EOF: a bare FIN after the handshake must not raise a
   * fatal alert, which would also evict the session from the cache. */
  SSL_CTX_set_options(ctx, (tickets ? 0 : SSL_OP_NO_TICKET) | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  static const unsigned char sid_ctx[] = "osc-bench";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, 20480);
  SSL_CTX_set_timeout(ctx, 300);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096) ||
      getsockname(lfd, (struct sockaddr *)&a, &alen)) {
    perror("listen");
    return 1;
  }
  epfd = epoll_create1(0);
  struct epoll_event le = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
  printf("READY %d\n", ntohs(a.sin_port));
  fflush(stdout);

  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(epfd, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c) { drive(c); continue; }
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = calloc(1, sizeof *c);
        c->fd = fd;
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, fd);
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
        drive(c);
      }
    }
  }
  printf("STATS {\"number\":%ld,\"accept\":%ld,\"acceptGood\":%ld,\"hits\":%ld,"
         "\"misses\":%ld,\"timeouts\":%ld,\"cacheFull\":%ld}\n",
         SSL_CTX_sess_number(ctx), SSL_CTX_sess_accept(ctx), SSL_CTX_sess_accept_good(ctx),
         SSL_CTX_sess_hits(ctx), SSL_CTX_sess_misses(ctx), SSL_CTX_sess_timeouts(ctx),
         SSL_CTX_sess_cache_full(ctx));
  fflush(stdout);
  return 0; /* open connections die with the process */
}
