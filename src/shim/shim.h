/*
 * shim.h - what the two halves of libcairn-preload.so share.
 *
 * The shim makes an unmodified program a client of the daemon that serves
 * the cairn mounts it uses (docs/ARCHITECTURE.md, "The preload shim").
 * Every descriptor the program sees is a real one, opened through the
 * kernel on the FUSE mount: the kernel keeps doing what it does for
 * descriptors (dup, fork, exec, poll, locks, /proc), and every call the
 * shim does not take over goes to the kernel unchanged.  The shim takes
 * over the writes (and ftruncate) to files the program has open for
 * writing, which go into the client's private log with no system call
 * (the shim keeps the descriptor's position, and gives it to the kernel
 * before the kernel uses it); the daemon keeps the mount coherent with
 * them (src/libfs/clients.h).
 *
 * shim_files.c owns the table of descriptors the shim writes itself and
 * the mounts with their clients; shim_calls.c holds the functions the
 * program calls instead of libc's; shim_stdio.c the stdio streams whose
 * writes it takes over.  May call: src/client/client.h, libc.
 */
#ifndef CAIRN_SHIM_H
#define CAIRN_SHIM_H

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <sys/types.h>

struct client;

/* One open file description the shim writes natively: shared by the
 * descriptors that dup() made of it. */
struct shim_file {
	atomic_int refs;
	struct client *client; /* the mount's */
	uint64_t ino;
	int cfd;    /* the client's descriptor (client_adopt_local) */
	int append; /* O_APPEND: writes go at the end */
	/* The descriptor's position, and whether the kernel's or this one
	 * holds: one word (shim_pos_word), so that a signal handler's change
	 * of it between a thread's look and its store is seen.  write() moves
	 * it with no system call; the kernel's is set (shim_settle_pos)
	 * before the kernel uses it. */
	_Atomic uint64_t pos;
	/* write() takes the position and moves it past its bytes, then
	 * writes them; settling takes it too.  One thread at a time. */
	pthread_mutex_t pos_lock;
	/* A native write holds it alone while it writes and drops the pages
	 * it covers; the process's reads of the file hold it shared, so that
	 * none can bring a page of the file from before the write back into
	 * the cache after it was dropped. */
	pthread_rwlock_t io_lock;
	/* The kernel holds no page of the file that it did not hold when
	 * the daemon's count of requests that bring pages (struct clog_grant,
	 * kernel_reads) was pages_dropped_at: all were dropped then.  Under
	 * io_lock held alone. */
	int pages_dropped;
	uint64_t pages_dropped_at;
	/* Set with io_lock held alone when the file goes back to the kernel
	 * (shim_give_back, a fork): a write that finds it under the lock is
	 * the kernel's, at the position settled then. */
	atomic_int given_back;
};

/* Where a descriptor's position is (struct shim_file, pos). */
enum {
	SHIM_POS_KERNEL, /* the kernel's holds; pos is not known */
	SHIM_POS_SYNCED, /* the kernel's is pos */
	SHIM_POS_AHEAD,  /* pos holds; the kernel's is behind */
	SHIM_POS_END,    /* at the end of the file, after a native append;
	                    pos is not known */
};

/*
 * The word of a position: its SHIM_POS_* state in the two low bits, the
 * position above them.  A thread that looked at the word changes it with
 * a compare-and-swap, so that a signal handler that interrupted it and
 * wrote through the kernel meanwhile (at the kernel's position: its
 * calls take no lock) is seen, and the thread does not put back a
 * position from before the handler's write, which the thread's next
 * write would then cover.  A handler leaves the word KERNEL with other
 * position bits than before (shim_pos_to_kernel): in a KERNEL word they
 * only tell one change from the next.  A handler moves the kernel's
 * position back only when the word holds a position ahead of it (it
 * settles it before its own call): so when the swap of a thread's lseek
 * fails, the lseek is made again only if the word it looked at was such
 * a position and the lseek does not count from it (seek, shim_calls.c);
 * the thread's own settling, which is such a move back, is made with
 * signals blocked (shim_signals_block).
 */
static inline uint64_t shim_pos_word(int state, off_t pos)
{
	return (uint64_t)pos << 2 | (uint64_t)state;
}

static inline int shim_pos_state(uint64_t word)
{
	return (int)(word & 3);
}

static inline off_t shim_pos_at(uint64_t word)
{
	return (off_t)(word >> 2);
}

/* The kernel's position r, just learnt by an lseek, as the word that
 * says it holds: SYNCED, or KERNEL when r does not fit the word (an
 * lseek may go far past the largest file: stored, 2^62 + 100 would read
 * as 100, and the next native write would land there).  `was` is the
 * word looked at before, which a KERNEL word must differ from. */
#define SHIM_POS_FITS ((off_t)1 << 61)
static inline uint64_t shim_pos_held(off_t r, uint64_t was)
{
	return r < SHIM_POS_FITS
	           ? shim_pos_word(SHIM_POS_SYNCED, r)
	           : shim_pos_word(SHIM_POS_KERNEL, (shim_pos_at(was) + 1) & (SHIM_POS_FITS - 1));
}

/* The kernel's position holds for f from now on (a read or a handler's
 * write moved it). */
void shim_pos_to_kernel(struct shim_file *f);
/* Every signal blocked for this thread, the mask before in *old; and the
 * mask put back. */
void shim_signals_block(sigset_t *old);
void shim_signals_restore(const sigset_t *old);

/* libc's own function of that name (shim_real), kept in a variable of
 * the calling site's. */
#define REAL(name, type)                                                                           \
	({                                                                                         \
		static void *_Atomic real_;                                                        \
		void *fn_ = atomic_load_explicit(&real_, memory_order_relaxed);                    \
		if (!fn_) {                                                                        \
			fn_ = shim_real(#name);                                                    \
			atomic_store_explicit(&real_, fn_, memory_order_relaxed);                  \
		}                                                                                  \
		(type) fn_;                                                                        \
	})
/* libc's function `name`, found when the library was loaded (dlsym
 * RTLD_NEXT), so that a signal handler's first call of it does not run
 * the dynamic linker; dlsym for a name not on the list. */
void *shim_real(const char *name);

/* The file behind descriptor fd with a reference taken, or NULL when the
 * shim does not write fd itself. */
struct shim_file *shim_get(int fd);
void shim_put(struct shim_file *f);
/* The kernel writes fd (of file f) from now on, at the position it should
 * have: set first if a native append left it behind. */
void shim_give_back(int fd, struct shim_file *f);
/* The same for every descriptor of f (O_APPEND belongs to the file, not
 * to one descriptor of it). */
void shim_give_back_all(struct shim_file *f);
/* The shim no longer writes fd itself: it closes, a dup2 goes over it,
 * or the kernel writes it from now on. */
void shim_forget(int fd);
void shim_forget_range(unsigned first, unsigned last);
/* fd2 is now a duplicate of fd (dup, dup2, F_DUPFD). */
void shim_dup(int fd, int fd2);
/* An open for writing of path (relative to dirfd) is about to be made:
 * if the path is on a cairn mount whose daemon the process is not a
 * client of yet, it becomes one now, so that the open is its own. */
void shim_before_open(int dirfd, const char *path, int flags);
/* Whether path, as written (links not followed), lies on a cairn mount
 * whose daemon the process is a client of, or may become one. */
int shim_on_mount(const char *path);
/* fd was just opened with flags: the shim takes its writes over if it is
 * a regular file on a cairn mount open for writing.  Never fails: a file
 * it cannot take stays the kernel's. */
void shim_opened(int fd, int flags);
/* A program is about to be started (posix_spawn, system, popen) with the
 * descriptors that do not close on exec: those the shim writes go back to
 * the kernel, as after a fork (shim_files.c says why). */
void shim_before_spawn(void);
/* The descriptors the shim's clients hold themselves (their sockets, and
 * the log files of the file kind), ascending, at most max into fds; their
 * number.  The program never opened them, and closing them would end the
 * session or hand their number to the program's next file: close,
 * close_range and closefrom leave them.  Takes no lock (a signal handler
 * may ask). */
int shim_own_fds(int *fds, int max);
#define SHIM_OWN_FDS (2 * 16)
/* The program is about to reuse fd, one of them (dup2 onto it): it moves
 * to another number first.  0, or -1 with errno. */
int shim_vacate_fd(int fd);
/* fd is about to be mapped: the pages of its inode are the kernel's from
 * now on, so none of the process's descriptors of it is written natively
 * any more, nor will be. */
void shim_mapping(int fd);
/* The kernel's position of f's descriptor fd set to the one the shim
 * holds (pos, or the end after a native append), before the kernel uses
 * it. */
void shim_settle_pos(struct shim_file *f, int fd);
/* The kernel moved fd's position (a read, an lseek): it holds from now
 * on, until a write() learns it again. */
void shim_pos_moved(int fd);
/* Every position the shim holds goes to the kernel: before fork, spawn
 * and exec, whose children and new images find them there. */
void shim_settle_all(void);
/* fd is about to be shared with code that uses the kernel's position
 * behind the shim's back (stdio, another process): every descriptor of
 * its file goes back to the kernel, its position settled. */
void shim_give_back_fd(int fd);

/* Whether f is one of the streams shim_stdio.c made (a cookie stream of a
 * file the shim writes). */
int shim_stream_owns(FILE *f);
/* freopen of such a stream: it takes a descriptor of the new file (of its
 * own file again if path is NULL), at the old number. */
FILE *shim_stream_reopen(const char *path, const char *mode, FILE *f);

/*
 * Signal handlers may call the functions the shim wraps, on a thread that
 * the signal interrupted inside the shim, holding its locks or in the
 * middle of a request to the daemon.  So the shim counts, per thread, how
 * deep it is (shim_enter, shim_leave around everything that takes a lock
 * or talks to the daemon), and a call made while the count is not zero
 * (shim_busy: a handler's) takes no lock but the table's read lock
 * (never held by a thread that can be interrupted while it writes the
 * table: signals are blocked then) and goes to the kernel.  What such a
 * call must change in the table (a descriptor it closes) is marked at
 * once and done when the thread leaves the shim.
 */
int shim_busy(void);
void shim_enter(void);
void shim_leave(void);
/* A handler's close (or dup2 over) of fd: the shim stops writing through
 * fd now, and forgets it when the thread leaves the shim. */
void shim_forget_later(int fd);
void shim_forget_range_later(unsigned first, unsigned last);
/* A handler's F_SETFL of fd: if it changes O_APPEND, every descriptor of
 * the file is given back so (its position set first).  1 if it turned
 * O_APPEND on for a file the shim wrote. */
int shim_setfl_later(int fd, int append);
/* A handler's shim_give_back_fd and shim_settle_all: no lock taken. */
void shim_give_back_fd_later(int fd);
void shim_settle_all_later(void);
/* A handler's read, write or lseek of fd: the kernel's position is set
 * first to the one the shim holds, taking no lock, and holds after. */
void shim_settle_pos_now(int fd);

#endif
