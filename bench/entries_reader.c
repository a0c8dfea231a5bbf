/* One RequestEntries stream read in C with libzmq, for bench_entries.py: the same frames and
 * acknowledgements as its Python reader (spec/protocol.md 9.5, spec/client.md 4.1), at a
 * fraction of the CPU per entry, so the reader does not cap the servers it compares.
 *
 *     cc -O2 -o entries_reader entries_reader.c -lzmq
 *     entries_reader URL PREV COUNT STREAM_ID TIMEOUT_MS
 *
 * Prints one JSON line: entries, bytes, messages, seconds (first request to the final message)
 * and cpu (this process, all threads); or {"error": ...} and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

static size_t put_uint(unsigned char *buf, uint64_t v) {
    size_t n = 0;
    do {
        buf[n++] = (unsigned char)(v & 0xff);
        v >>= 8;
    } while (v);
    return n;
}

static uint64_t get_uint(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    while (n-- > 0) v = (v << 8) | p[n];
    return v;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static int fail(const char *why, uint64_t last, uint64_t received) {
    printf("{\"error\": \"%s after index %llu (%llu entries)\"}\n", why, (unsigned long long)last,
           (unsigned long long)received);
    return 1;
}

static int send_request(void *s, const unsigned char *rid, size_t ridn, uint64_t prev, uint64_t count) {
    unsigned char a[8], b[8];
    size_t an = put_uint(a, prev), bn = put_uint(b, count);
    if (zmq_send(s, rid, ridn, ZMQ_SNDMORE) < 0 || zmq_send(s, "<", 1, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(s, a, an, ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(s, b, bn, 0);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: entries_reader URL PREV COUNT STREAM_ID TIMEOUT_MS\n");
        return 2;
    }
    uint64_t prev = strtoull(argv[2], NULL, 10), count = strtoull(argv[3], NULL, 10);
    unsigned char rid[8];
    size_t ridn = put_uint(rid, strtoull(argv[4], NULL, 10));
    int timeout = atoi(argv[5]), zero = 0;
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_connect(s, argv[1]) != 0) return fail("cannot connect", prev, 0);
    uint64_t last = prev, received = 0, bytes = 0, messages = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    double c0 = cpu(), t0 = now();
    if (send_request(s, rid, ridn, prev, count) < 0) return fail("cannot send", last, received);
    for (;;) {
        int frame = 0, ours = 0, status = -1;
        uint64_t msg_last = 0, n = 0, nbytes = 0;
        do {
            if (zmq_msg_recv(&m, s, 0) < 0) return fail("no message within the timeout", last, received);
            size_t size = zmq_msg_size(&m);
            const unsigned char *d = zmq_msg_data(&m);
            if (frame == 0)
                ours = size == ridn && memcmp(d, rid, ridn) == 0;
            else if (frame == 1)
                status = size ? d[0] : 0;
            else if (frame == 3)
                msg_last = get_uint(d, size < 8 ? size : 8);
            else if (frame >= 4) {
                n++;
                nbytes += size;
            }
            frame++;
        } while (zmq_msg_more(&m));
        if (!ours) continue;
        if (status == 0) return fail("not the leader", last, received);
        if ((status != 1 && status != 2) || frame < 4) return fail("unexpected reply", last, received);
        if (n && msg_last - n != last) return fail("out of order", last, received);
        if (n) last = msg_last;
        received += n;
        bytes += nbytes;
        messages++;
        if (status == 1) break;
        if (send_request(s, rid, ridn, last, count) < 0) return fail("cannot send", last, received);
    }
    double seconds = now() - t0, used = cpu() - c0;
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    if (last != prev + count || received != count) return fail("short read", last, received);
    printf("{\"entries\": %llu, \"bytes\": %llu, \"messages\": %llu, \"seconds\": %.6f, \"cpu\": %.6f}\n",
           (unsigned long long)received, (unsigned long long)bytes, (unsigned long long)messages, seconds, used);
    return 0;
}
