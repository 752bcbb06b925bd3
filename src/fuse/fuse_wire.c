/*
 * fuse_wire.c - what the FUSE front end needs from the kernel protocol that
 * libfuse 3.14 does not give it: the FUSE_HANDLE_KILLPRIV_V2 handshake and
 * the "kill set-user-ID and set-group-ID" flag of each request.
 *
 * Owns: the session's I/O on /dev/fuse (fuse_session_custom_io), a view of
 * each request as it is read, the INIT reply as it is written, and how a
 * lone serving thread waits for requests (read_spinning).
 * May call: libfuse3, the kernel's FUSE protocol header, libc.
 *
 * Why: a file system that serves extended attributes makes the kernel ask
 * getxattr("security.capability") before every write (file_remove_privs),
 * one more round trip per write.  With FUSE_HANDLE_KILLPRIV_V2 the kernel
 * marks inodes it has checked (SB_NOSEC) and skips that request; in return
 * the file system clears the set-ID bits itself, on the requests the
 * kernel flags: WRITE (FUSE_WRITE_KILL_SUIDGID), SETATTR
 * (FATTR_KILL_SUIDGID) and OPEN/CREATE with O_TRUNC
 * (FUSE_OPEN_KILL_SUIDGID).  libfuse 3.14 neither asks for the capability
 * (it has no FUSE_CAP_HANDLE_KILLPRIV_V2) nor passes those flags to the
 * operations, so this file does both at the wire: the INIT reply gets the
 * bit when the kernel offered it, and each request's flag is kept for the
 * thread that handles it.  libfuse reads a request and runs its operation
 * on the same thread, before it reads the next one, so a thread-local
 * variable carries the flag from the read to the operation.
 *
 * The structures read here are the kernel's ABI (linux/fuse.h): their
 * layout never changes, only grows at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fuse/fuse_internal.h"
#include "libfs/clients.h"

static _Thread_local bool request_kills_suidgid;
static _Thread_local uint64_t grant_changes; /* when the request was read */

bool cfuse_request_kills_suidgid(void)
{
	return request_kills_suidgid;
}

uint64_t cfuse_grant_changes_seen(void)
{
	return grant_changes;
}

/* The request's argument, if the buffer holds at least `size` bytes of it. */
static const void *arg_of(const void *buf, size_t len, size_t size)
{
	if (len < sizeof(struct fuse_in_header) + size)
		return NULL;
	return (const char *)buf + sizeof(struct fuse_in_header);
}

/* Notes what the request just read asks of the file system. */
static void inspect(struct cfuse *cf, const void *buf, size_t len)
{
	request_kills_suidgid = false;
	if (len < sizeof(struct fuse_in_header))
		return;
	const struct fuse_in_header *h = buf;
	const struct fuse_write_in *w;
	const struct fuse_setattr_in *sa;
	const struct fuse_open_in *o;
	const struct fuse_create_in *c;
	const struct fuse_init_in *in;
	switch (h->opcode) {
	case FUSE_WRITE:
		if ((w = arg_of(buf, len, sizeof(*w))))
			request_kills_suidgid = w->write_flags & FUSE_WRITE_KILL_SUIDGID;
		break;
	case FUSE_SETATTR:
		if ((sa = arg_of(buf, len, sizeof(*sa))))
			request_kills_suidgid = sa->valid & FATTR_KILL_SUIDGID;
		break;
	case FUSE_OPEN:
		if ((o = arg_of(buf, len, sizeof(*o))))
			request_kills_suidgid = o->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_CREATE:
		if ((c = arg_of(buf, len, sizeof(*c))))
			request_kills_suidgid = c->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_INIT:
		/* The first 16 bytes (major, minor, max_readahead, flags) are
		 * in every version of the request. */
		if ((in = arg_of(buf, len,
		                 offsetof(struct fuse_init_in, flags) + sizeof(in->flags)))) {
			cf->init_unique = h->unique;
			cf->kernel_offers_killpriv_v2 = in->flags & FUSE_HANDLE_KILLPRIV_V2;
		}
		break;
	}
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One request, waiting up to CFUSE_SPIN_NS for it without sleeping (the
 * descriptor is non-blocking), then in poll.  Sleeping costs a wake-up
 * per request, and on a virtual machine whose idle processors halt, a
 * wake-up on another processor costs tens of microseconds: the caller's
 * next request usually comes sooner than that. */
static ssize_t read_spinning(struct cfuse *cf, int fd, void *buf, size_t len)
{
	uint64_t until = now_ns() + CFUSE_SPIN_NS;
	ssize_t n;
	/* Yielding between polls lets a caller woken on this processor (the
	 * one that will send the next request) run at once. */
	while ((n = read(fd, buf, len)) < 0 && errno == EAGAIN && now_ns() < until)
		sched_yield();
	while (n < 0 && errno == EAGAIN) {
		/* A signal that ended the session while this thread was not
		 * in poll would not wake it: look before sleeping.  EINTR
		 * sends libfuse to check. */
		if (fuse_session_exited(cf->se)) {
			errno = EINTR;
			return -1;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0)
			return -1;
		n = read(fd, buf, len);
	}
	return n;
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	struct cfuse *cf = userdata;
	ssize_t n = cf->spin ? read_spinning(cf, fd, buf, len) : read(fd, buf, len);
	if (n > 0)
		inspect(cf, buf, (size_t)n);
	/* Ingest before serve: a request the kernel sends after a client's
	 * local write returned must see it (src/libfs/clients.h).  A request
	 * that may leave the kernel holding pages of a granted file is
	 * counted first: the client then drops them after its next write
	 * (the only requests that bring pages: no copy_file_range, no
	 * writeback cache). */
	if (n > 0 && cf->fs) {
		const struct fuse_in_header *h = buf;
		if ((size_t)n >= sizeof(*h) && (h->opcode == FUSE_READ || h->opcode == FUSE_WRITE))
			clients_kernel_reads(cf->fs, h->nodeid);
		grant_changes = clients_changes(cf->fs);
		clients_ingest(cf->fs);
	}
	return n;
}

/* Adds FUSE_HANDLE_KILLPRIV_V2 to the INIT reply (a header, then struct
 * fuse_init_out) when the kernel offered it; every other reply passes as
 * it is. */
static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct cfuse *cf = userdata;
	struct fuse_init_out out;
	const size_t flags_end = offsetof(struct fuse_init_out, flags) + sizeof(out.flags);
	if (!cf->kernel_offers_killpriv_v2 || cfuse_killpriv_v2(cf) || count != 2 ||
	    iov[0].iov_len < sizeof(struct fuse_out_header) || iov[1].iov_len < flags_end ||
	    iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	const struct fuse_out_header *h = iov[0].iov_base;
	if (h->unique != cf->init_unique || h->error != 0)
		return writev(fd, iov, count);
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	struct iovec patched[2] = {iov[0], {&out, iov[1].iov_len}};
	/* Set before the reply: once the kernel has it, other threads may
	 * read flagged requests at once.  A failed reply ends the session. */
	atomic_store_explicit(&cf->killpriv_v2, true, memory_order_release);
	return writev(fd, patched, 2);
}

int cfuse_wire_attach(struct fuse_session *se, struct cfuse *cf)
{
	static const struct fuse_custom_io io = {.read = wire_read, .writev = wire_writev};
	int fd = fuse_session_fd(se);
	if (cf->spin && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return fuse_session_custom_io(se, &io, fd);
}
