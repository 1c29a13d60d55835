/*
 * wsload: a small WebSocket (RFC 6455) load client for bench/relay.bench.ts, written in C so the
 * benchmark measures the relay and not its client (a Node `ws` client alone tops out near 650 MB/s).
 * Built by the bench with `gcc -O2 -pthread` into bench/out/. Loopback benchmarking only.
 *
 *   wsload ws  HOST PORT PATH MODE N [HEADER]...   through a WebSocket relay (subprotocol "binary")
 *   wsload tcp HOST PORT MODE N                     straight to the TCP target (the baseline)
 *   wsload target PORT                              the TCP target every relay forwards to
 *   wsload sink PORT                                a trivial WebSocket endpoint playing the target's
 *                                                   part itself: the client's own ceiling
 *
 * MODE down N: the target sends N bytes; MB/s from the request to the last byte received.
 * MODE up N:   the client sends N bytes (masked frames of FRAME bytes); MB/s until the target's 1-byte ack.
 * MODE echo N: N round trips of a 64-byte message (after N/10 warm-up ones); p50/p99 in microseconds.
 * The target learns the mode from the first line the client sends: "D n\n", "U n\n" or "E\n".
 * Output: one JSON line on stdout. Any failure: a message on stderr and exit status 1.
 *
 * Every loop is bounded by N; every read and write checks its result.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FRAME_DEFAULT 64000 /* under the gateway's 64 KiB message limit */
#define IO_BUF (1 << 20)
#define ECHO_BYTES 64

/* Set in the target's and sink's connection threads: a failure there ends that connection only. */
static __thread int serving;

static void die(const char *what) {
  if (serving) pthread_exit(NULL); /* the peer went away mid-transfer: its business, not the server's */
  fprintf(stderr, "wsload: %s: %s\n", what, errno ? strerror(errno) : "failed");
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("write");
    p += n;
    len -= (size_t)n;
  }
}

static void writev_all(int fd, struct iovec *iov, int count) {
  while (count > 0) {
    ssize_t n = writev(fd, iov, count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("writev");
    while (count > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
}

/* ---- buffered reader ---- */
typedef struct {
  int fd;
  uint8_t *buf;
  size_t len, pos;
} reader_t;

static void reader_init(reader_t *r, int fd) {
  r->fd = fd;
  r->buf = malloc(IO_BUF);
  if (!r->buf) die("malloc");
  r->len = r->pos = 0;
}

/* Makes at least one unread byte available; returns 0 at EOF. */
static int fill(reader_t *r) {
  if (r->pos < r->len) return 1;
  for (;;) {
    ssize_t n = read(r->fd, r->buf, IO_BUF);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read");
    r->pos = 0;
    r->len = (size_t)n;
    return n > 0;
  }
}

static void read_exact(reader_t *r, uint8_t *dst, size_t len) {
  while (len > 0) {
    if (!fill(r)) { errno = 0; die("unexpected end of stream"); }
    size_t n = r->len - r->pos < len ? r->len - r->pos : len;
    if (dst) { memcpy(dst, r->buf + r->pos, n); dst += n; }
    r->pos += n;
    len -= n;
  }
}

/* ---- frames ---- */
typedef struct {
  int opcode;
  uint64_t len;
  int masked;
  uint8_t mask[4];
} frame_t;

static void read_frame_header(reader_t *r, frame_t *f) {
  uint8_t h[2];
  read_exact(r, h, 2);
  f->opcode = h[0] & 0x0f;
  f->masked = h[1] >> 7;
  f->len = h[1] & 0x7f;
  if (f->len == 126) {
    uint8_t e[2];
    read_exact(r, e, 2);
    f->len = ((uint64_t)e[0] << 8) | e[1];
  } else if (f->len == 127) {
    uint8_t e[8];
    read_exact(r, e, 8);
    f->len = 0;
    for (int i = 0; i < 8; i++) f->len = (f->len << 8) | e[i];
  }
  if (f->masked) read_exact(r, f->mask, 4);
}

static size_t frame_head(uint8_t *out, int opcode, uint64_t len, const uint8_t *mask) {
  size_t n = 0;
  out[n++] = (uint8_t)(0x80 | opcode);
  uint8_t m = mask ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    out[n++] = m | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = m | 127;
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(len >> (8 * i));
  }
  if (mask) { memcpy(out + n, mask, 4); n += 4; }
  return n;
}

/* XOR with the 4-byte key, 8 bytes at a time (RFC 6455 §5.3); `offset` keeps the key phase. */
static void apply_mask(uint8_t *data, size_t len, const uint8_t *mask, size_t offset) {
  uint8_t k[8];
  for (int i = 0; i < 8; i++) k[i] = mask[(offset + i) & 3];
  uint64_t k64;
  memcpy(&k64, k, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, data + i, 8);
    v ^= k64;
    memcpy(data + i, &v, 8);
  }
  for (; i < len; i++) data[i] ^= mask[(offset + i) & 3];
}

static const uint8_t CLIENT_MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A client frame: masked copy of the payload, header and payload in one writev. */
static void send_client_frame(int fd, int opcode, const uint8_t *payload, size_t len, uint8_t *scratch) {
  uint8_t head[14];
  size_t hn = frame_head(head, opcode, len, CLIENT_MASK);
  memcpy(scratch, payload, len);
  apply_mask(scratch, len, CLIENT_MASK, 0);
  struct iovec iov[2] = {{head, hn}, {scratch, len}};
  writev_all(fd, iov, 2);
}

static void send_server_frame(int fd, int opcode, const uint8_t *payload, size_t len) {
  uint8_t head[14];
  size_t hn = frame_head(head, opcode, len, NULL);
  struct iovec iov[2] = {{head, hn}, {(void *)payload, len}};
  writev_all(fd, iov, 2);
}

/*
 * Reads data frames (answering pings, failing on close) until `want` payload bytes have arrived;
 * copies them into dst when dst is not NULL. Frames from a server are unmasked; a sink's are masked.
 */
static void read_payload(reader_t *r, int fd, uint64_t want, uint8_t *dst, uint64_t *frame_left, frame_t *f, uint8_t *scratch) {
  while (want > 0) {
    if (*frame_left == 0) {
      read_frame_header(r, f);
      if (f->opcode == 8) { errno = 0; die("the relay closed the WebSocket"); }
      if (f->opcode == 9 || f->opcode == 10) {
        uint8_t ping[125];
        if (f->len > 125) { errno = 0; die("oversized control frame"); }
        read_exact(r, ping, (size_t)f->len);
        if (f->opcode == 9) send_client_frame(fd, 10, ping, (size_t)f->len, scratch);
        continue;
      }
      *frame_left = f->len;
      continue;
    }
    uint64_t n = *frame_left < want ? *frame_left : want;
    if (dst) {
      read_exact(r, dst, (size_t)n);
      if (f->masked) apply_mask(dst, (size_t)n, f->mask, (size_t)(f->len - *frame_left));
      dst += n;
    } else {
      read_exact(r, NULL, (size_t)n);
    }
    *frame_left -= n;
    want -= n;
  }
}

/* ---- connections ---- */
static int dial(const char *host, const char *port) {
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) { errno = 0; die("getaddrinfo"); }
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) die("connect");
  freeaddrinfo(res);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) die("listen");
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  printf("listening %d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

/* Reads the HTTP head (up to the blank line) into `out`; returns its length. */
static size_t read_http_head(reader_t *r, char *out, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    read_exact(r, (uint8_t *)out + n, 1);
    n++;
    if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0) break;
  }
  out[n] = 0;
  return n;
}

static void ws_handshake(int fd, reader_t *r, const char *host, const char *port, const char *path, char **headers, int nheaders) {
  char req[8192];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: d3Nsb2FkLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: binary\r\n",
                   path, host, port);
  for (int i = 0; i < nheaders; i++) n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", headers[i]);
  n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
  write_all(fd, req, (size_t)n);
  char head[8192];
  read_http_head(r, head, sizeof head);
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
    fprintf(stderr, "wsload: handshake refused: %.200s\n", head);
    exit(1);
  }
}

/* ---- the client ---- */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void run_client(int ws, int fd, reader_t *r, const char *mode, uint64_t n, size_t frame) {
  uint8_t *payload = malloc(frame), *scratch = malloc(frame + 16);
  if (!payload || !scratch) die("malloc");
  for (size_t i = 0; i < frame; i++) payload[i] = (uint8_t)(i * 31 + 7);
  frame_t f = {0};
  uint64_t left = 0;
  char cmd[64];

  if (strcmp(mode, "echo") == 0) {
    int len = snprintf(cmd, sizeof cmd, "E\n");
    if (ws) send_client_frame(fd, 2, (uint8_t *)cmd, (size_t)len, scratch); else write_all(fd, cmd, (size_t)len);
    uint64_t warm = n / 10, total = n + warm;
    uint64_t *rtt = malloc(sizeof(uint64_t) * n);
    uint8_t back[ECHO_BYTES];
    for (uint64_t i = 0; i < total; i++) {
      double t0 = now_s();
      if (ws) send_client_frame(fd, 2, payload, ECHO_BYTES, scratch); else write_all(fd, payload, ECHO_BYTES);
      if (ws) read_payload(r, fd, ECHO_BYTES, back, &left, &f, scratch); else read_exact(r, back, ECHO_BYTES);
      if (memcmp(back, payload, ECHO_BYTES) != 0) { errno = 0; die("echo mismatch"); }
      if (i >= warm) rtt[i - warm] = (uint64_t)((now_s() - t0) * 1e9);
    }
    qsort(rtt, n, sizeof *rtt, cmp_u64);
    printf("{\"mode\":\"echo\",\"count\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", (unsigned long long)n,
           rtt[n / 2] / 1e3, rtt[(n * 99) / 100] / 1e3);
    return;
  }

  int down = strcmp(mode, "down") == 0;
  if (!down && strcmp(mode, "up") != 0) { errno = 0; die("MODE must be down, up or echo"); }
  int len = snprintf(cmd, sizeof cmd, "%c %llu\n", down ? 'D' : 'U', (unsigned long long)n);
  double t0 = now_s();
  if (ws) send_client_frame(fd, 2, (uint8_t *)cmd, (size_t)len, scratch); else write_all(fd, cmd, (size_t)len);
  if (down) {
    if (ws) read_payload(r, fd, n, NULL, &left, &f, scratch); else read_exact(r, NULL, n);
  } else {
    /* The client should cost almost nothing per byte: whole frames (header and masked payload) are
       built once into a ~1 MiB batch that is written again and again, one write per batch. */
    size_t per_batch = IO_BUF / (frame + 14);
    if (per_batch == 0) per_batch = 1;
    uint8_t *batch = malloc(per_batch * (frame + 14));
    size_t batch_len = 0;
    if (!batch) die("malloc");
    for (size_t i = 0; i < per_batch; i++) {
      if (ws) {
        batch_len += frame_head(batch + batch_len, 2, frame, CLIENT_MASK);
        memcpy(batch + batch_len, payload, frame);
        apply_mask(batch + batch_len, frame, CLIENT_MASK, 0);
      } else {
        memcpy(batch + batch_len, payload, frame);
      }
      batch_len += frame;
    }
    uint64_t sent = 0;
    for (; n - sent >= per_batch * frame; sent += per_batch * frame) write_all(fd, batch, batch_len);
    for (; sent < n;) {
      size_t k = n - sent < frame ? (size_t)(n - sent) : frame;
      if (ws) send_client_frame(fd, 2, payload, k, scratch); else write_all(fd, payload, k);
      sent += k;
    }
    uint8_t ack;
    if (ws) read_payload(r, fd, 1, &ack, &left, &f, scratch); else read_exact(r, &ack, 1);
    if (ack != 'K') { errno = 0; die("bad ack"); }
  }
  double secs = now_s() - t0;
  printf("{\"mode\":\"%s\",\"bytes\":%llu,\"seconds\":%.4f,\"mb_per_s\":%.1f}\n", mode, (unsigned long long)n, secs,
         n / 1048576.0 / secs);
}

/* ---- the TCP target and the WebSocket sink ---- */
static uint8_t SOURCE[IO_BUF];

typedef struct {
  int fd;
  int ws; /* sink: speak WebSocket frames itself */
} conn_t;

static void *serve_conn(void *arg) {
  conn_t c = *(conn_t *)arg;
  free(arg);
  serving = 1;
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  reader_t r;
  reader_init(&r, c.fd);
  frame_t f = {0};
  uint64_t left = 0;
  uint8_t *scratch = malloc(IO_BUF + 16);
  char line[64] = {0};
  if (c.ws) {
    char head[8192];
    read_http_head(&r, head, sizeof head);
    /* wsload does not check Sec-WebSocket-Accept; this sink serves wsload only. */
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: x\r\nSec-WebSocket-Protocol: binary\r\n\r\n";
    write_all(c.fd, ok, strlen(ok));
    read_frame_header(&r, &f);
    if (f.len >= sizeof line) goto done;
    read_exact(&r, (uint8_t *)line, (size_t)f.len);
    apply_mask((uint8_t *)line, (size_t)f.len, f.mask, 0);
  } else {
    for (size_t i = 0; i + 1 < sizeof line; i++) {
      if (!fill(&r)) goto done;
      read_exact(&r, (uint8_t *)line + i, 1);
      if (line[i] == '\n') break;
    }
  }
  unsigned long long n = 0;
  if (line[0] == 'D' && sscanf(line + 2, "%llu", &n) == 1) {
    for (uint64_t sent = 0; sent < n;) {
      size_t k = n - sent < 256 * 1024 ? (size_t)(n - sent) : 256 * 1024;
      if (c.ws) send_server_frame(c.fd, 2, SOURCE, k); else write_all(c.fd, SOURCE, k);
      sent += k;
    }
  } else if (line[0] == 'U' && sscanf(line + 2, "%llu", &n) == 1) {
    if (c.ws) read_payload(&r, c.fd, n, NULL, &left, &f, scratch); else read_exact(&r, NULL, n);
    if (c.ws) send_server_frame(c.fd, 2, (const uint8_t *)"K", 1); else write_all(c.fd, "K", 1);
  } else if (line[0] == 'E') {
    uint8_t buf[ECHO_BYTES];
    for (;;) {
      if (c.ws) {
        read_payload(&r, c.fd, ECHO_BYTES, buf, &left, &f, scratch);
        send_server_frame(c.fd, 2, buf, ECHO_BYTES);
      } else {
        if (!fill(&r)) break;
        size_t k = r.len - r.pos;
        write_all(c.fd, r.buf + r.pos, k);
        r.pos += k;
      }
    }
  }
  /* Wait for the client to finish: closing first could cut a relay's tail. */
  while (fill(&r)) r.pos = r.len;
done:
  close(c.fd);
  free(r.buf);
  free(scratch);
  return NULL;
}

static void serve(int port, int ws) {
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(port);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      die("accept");
    }
    conn_t *c = malloc(sizeof *c);
    c->fd = fd;
    c->ws = ws;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, serve_conn, c) != 0) die("pthread_create");
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *frame_env = getenv("WSLOAD_FRAME");
  size_t frame = frame_env ? (size_t)strtoull(frame_env, NULL, 10) : FRAME_DEFAULT;
  if (frame < ECHO_BYTES || frame > IO_BUF) frame = FRAME_DEFAULT;
  if (argc >= 3 && strcmp(argv[1], "target") == 0) serve(atoi(argv[2]), 0);
  if (argc >= 3 && strcmp(argv[1], "sink") == 0) serve(atoi(argv[2]), 1);
  if (argc >= 7 && strcmp(argv[1], "ws") == 0) {
    int fd = dial(argv[2], argv[3]);
    reader_t r;
    reader_init(&r, fd);
    ws_handshake(fd, &r, argv[2], argv[3], argv[4], argv + 7, argc - 7);
    run_client(1, fd, &r, argv[5], strtoull(argv[6], NULL, 10), frame);
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "tcp") == 0) {
    int fd = dial(argv[2], argv[3]);
    reader_t r;
    reader_init(&r, fd);
    run_client(0, fd, &r, argv[4], strtoull(argv[5], NULL, 10), frame);
    return 0;
  }
  fprintf(stderr, "usage: wsload ws HOST PORT PATH down|up|echo N [HEADER]... | wsload tcp HOST PORT MODE N | wsload target PORT | wsload sink PORT\n");
  return 2;
}
