/*
 * ctl_io.c - whole messages on the control socket: both ends write a
 * header and its payload with one sendmsg where they can, and read exact
 * lengths, whatever pieces the stream delivers them in.
 *
 * Also the copy of a scrub's progress between the thread that runs it and
 * whoever watches it, on either side of the socket.
 *
 * Owns: nothing.  May call: libc.  Called by: src/client, src/server.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/ctl.h"

int ctl_send_all(int fd, struct iovec *iov, int cnt)
{
	return ctl_send_fds(fd, iov, cnt, NULL, 0);
}

#define CTL_MAX_FDS 2

int ctl_send_fds(int fd, struct iovec *iov, int cnt, const int *fds, int nfds)
{
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(CTL_MAX_FDS * sizeof(int))];
	} ctl;
	if (nfds > CTL_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.b;
		m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	/* No SIGPIPE: a peer that went away is an error to return, not a
	 * reason for this process to die. */
	while (m.msg_iovlen) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		m.msg_control = NULL; /* the descriptors went with the first bytes */
		m.msg_controllen = 0;
		while (m.msg_iovlen && (size_t)n >= m.msg_iov[0].iov_len) {
			n -= (ssize_t)m.msg_iov[0].iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + n;
			m.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int ctl_recv_fds(int fd, void *buf, size_t len, int *fds, int max, int *nfds)
{
	*nfds = 0;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(CTL_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = {buf, len};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl.b,
	                   .msg_controllen = sizeof(ctl.b)};
	ssize_t n;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	return ctl_recv_all(fd, (uint8_t *)buf + n, len - (size_t)n);
}

int ctl_recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* 0: the peer closed, exited or died */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_recv_head(int fd, void *head, size_t hlen, void *body, size_t cap, size_t *have)
{
	struct iovec iov[2] = {{head, hlen}, {body, cap}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = cap ? 2 : 1};
	ssize_t n;
	do
		n = recvmsg(fd, &m, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	size_t got = (size_t)n;
	*have = got > hlen ? got - hlen : 0;
	return got < hlen ? ctl_recv_all(fd, (uint8_t *)head + got, hlen - got) : 0;
}

void ctl_scrub_copy(struct cairn_scrub *dst, const struct cairn_scrub *src)
{
	__atomic_store_n(&dst->files_total, __atomic_load_n(&src->files_total, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&dst->files_done, __atomic_load_n(&src->files_done, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&dst->bytes_total, __atomic_load_n(&src->bytes_total, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&dst->bytes_done, __atomic_load_n(&src->bytes_done, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&dst->damaged_blocks,
	                 __atomic_load_n(&src->damaged_blocks, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	/* The list up to the count published, and the count after it. */
	unsigned listed = __atomic_load_n(&src->listed, __ATOMIC_ACQUIRE);
	if (listed > CAIRN_SCRUB_LIST)
		listed = CAIRN_SCRUB_LIST;
	memcpy(dst->damaged, src->damaged, listed * sizeof(src->damaged[0]));
	__atomic_store_n(&dst->listed, listed, __ATOMIC_RELEASE);
}
