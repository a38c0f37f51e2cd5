/* The echo benchmark's C servers: an echo server with as little user-space work as a
 * server can have, so its rate is what the client and the kernel allow.
 *
 * One thread, epoll (level-triggered), non-blocking sockets, one read of BUF bytes
 * (256 KiB, or -DBUF=N) per readable event, written back at once, TCP_NODELAY set
 * as asyncio and tcpbench set it (-DNAGLE leaves Nagle's algorithm on, as socat
 * does); a partial write parks the rest and reads
 * stop until it is out (flow control, as every server in the table has), so the
 * peer's FIN is read, and answered with ours, only after everything is written.
 * -DSPIN=USEC busy-polls as tcpbench's loop does (tcpbench/engine/busypoll.py): after a
 * wait that returned events, poll without blocking for up to USEC microseconds,
 * yielding the CPU between polls, before blocking; misses back off 1, 2 ... 64 waits. Prints
 * "listening on 127.0.0.1:PORT" (port 0: the kernel picks) and runs until killed.
 *
 * Built by benchmarks/part_echo.py with the machine's cc; not part of tcpbench.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#ifndef BUF
#define BUF (256 * 1024)
#endif

struct conn {
    int fd;
    size_t off, len;  /* bytes of buf still to write */
    char buf[BUF];
};

static void finish(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Write what is parked; 1 if all of it is out, 0 if the socket is full, -1 on error. */
static int flush(struct conn *c) {
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            return -1;
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return 1;
}

static void serve(int ep, struct conn *c, unsigned events) {
    struct epoll_event ev = {.data.ptr = c};
    if (c->len) {  /* waiting for room to write */
        int done = flush(c);
        if (done < 0) { finish(ep, c); return; }
        if (!done) return;
        ev.events = EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    ssize_t n = recv(c->fd, c->buf, BUF, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        finish(ep, c);
        return;
    }
    if (n == 0) {
        shutdown(c->fd, SHUT_WR);
        finish(ep, c);
        return;
    }
    c->len = (size_t)n;
    int done = flush(c);
    if (done < 0) { finish(ep, c); return; }
    if (!done) {
        ev.events = EPOLLOUT;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

int main(void) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) {
        perror("listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event ready[64];
    for (;;) {
#ifdef SPIN
        static int after_io, skip, next_skip = 1;
        int n = 0;
        if (after_io && skip) { skip--; }
        else if (after_io) {
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (;;) {
                n = epoll_wait(ep, ready, 64, 0);
                if (n != 0) break;
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((t.tv_sec - t0.tv_sec) * 1e6 + (t.tv_nsec - t0.tv_nsec) / 1e3 >= SPIN) break;
                sched_yield();
            }
            if (n > 0) next_skip = 1;
            else { skip = next_skip; next_skip = next_skip * 2 > 64 ? 64 : next_skip * 2; }
        }
        if (n == 0) n = epoll_wait(ep, ready, 64, -1);
        after_io = n > 0;
#else
        int n = epoll_wait(ep, ready, 64, -1);
#endif
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; i++) {
            struct conn *c = ready[i].data.ptr;
            if (c != NULL) { serve(ep, c, ready[i].events); continue; }
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
#ifndef NAGLE
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
                c = calloc(1, sizeof *c);
                if (c == NULL) { close(fd); continue; }
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            }
        }
    }
}
