/*
 * media_pmem.c - the byte-addressable kinds: pmem (a DAX file or device
 * mapped by libpmem) and emul (a DRAM file, normally in /dev/shm, mapped
 * MAP_SHARED and treated exactly like pmem).
 *
 * Owns: the mapping of one such medium.  May call: libpmem (maybe through
 * dlopen, below), mmap, and
 * media_open_fd (media_file.c) for emul's open and size rules.  Called only
 * by media.c, which has already checked ranges and reports to the recorder.
 *
 * A write is a plain store into the mapping (it may sit in the CPU cache),
 * flush is pmem_flush (clwb/clflushopt per line), fence is pmem_drain
 * (sfence).  Never msync on this path: that is the kernel round trip the
 * whole design exists to avoid.  Both kinds share everything but open and
 * close.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/media_internal.h"

/*
 * libpmem, reached directly or, in the preload shim (CAIRN_PMEM_LAZY),
 * loaded when the first medium is opened.  libpmem brings libndctl,
 * libkmod and through them libcrypto into every process that maps it:
 * about 6 ms more for each program started, measured with the shim
 * preloaded into 200 runs of /bin/true (docs/PERFORMANCE.md).  Under
 * `cairn run` every program a script or a make starts pays that, while
 * most of them never write on a cairn mount; so the shim loads it only
 * for a process that attaches to a volume.  PMEM(fn) is libpmem's fn.
 */
#ifdef CAIRN_PMEM_LAZY
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define PMEM_LIBRARY "libpmem.so.1" /* the soname of Debian's libpmem1 */

static struct {
	__typeof__(pmem_map_file) *map_file;
	__typeof__(pmem_unmap) *unmap;
	__typeof__(pmem_errormsg) *errormsg;
	__typeof__(pmem_flush) *flush;
	__typeof__(pmem_memcpy_nodrain) *memcpy_nodrain;
	__typeof__(pmem_drain) *drain;
} pmem_lib;
static pthread_once_t pmem_once = PTHREAD_ONCE_INIT;
static char pmem_missing[200]; /* why it could not be loaded, or "" */

/* dlsym's pointer stored into a function pointer, as POSIX's own
 * example of dlsym does it. */
static void find(void *lib, const char *name, void *fn)
{
	void *p = dlsym(lib, name);
	if (!p && !pmem_missing[0])
		snprintf(pmem_missing, sizeof(pmem_missing), "%s has no %s", PMEM_LIBRARY, name);
	memcpy(fn, &p, sizeof(p));
}

static void pmem_load(void)
{
	void *lib = dlopen(PMEM_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(pmem_missing, sizeof(pmem_missing), "%s", dlerror());
		return;
	}
	find(lib, "pmem_map_file", &pmem_lib.map_file);
	find(lib, "pmem_unmap", &pmem_lib.unmap);
	find(lib, "pmem_errormsg", &pmem_lib.errormsg);
	find(lib, "pmem_flush", &pmem_lib.flush);
	find(lib, "pmem_memcpy_nodrain", &pmem_lib.memcpy_nodrain);
	find(lib, "pmem_drain", &pmem_lib.drain);
}

/* 0 once libpmem is loaded; else -ELIBACC and err says why.  Every medium
 * of this file opens through it, before any call of PMEM. */
static int pmem_ready(struct media *m, char *err, size_t errlen)
{
	pthread_once(&pmem_once, pmem_load);
	if (!pmem_missing[0])
		return 0;
	media_errf(err, errlen, m->path, "cannot load libpmem: %s", pmem_missing);
	return -ELIBACC;
}
#define PMEM(fn) (pmem_lib.fn)
#else
static int pmem_ready(struct media *m, char *err, size_t errlen)
{
	(void)m, (void)err, (void)errlen;
	return 0;
}
#define PMEM(fn) pmem_##fn
#endif

static int emul_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen);

static size_t page_round(uint64_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (size_t)((n + page - 1) / page * page);
}

/* Maps len bytes of fd from off at addr (NULL: anywhere; else over held
 * address space).  pmem asks for MAP_SYNC first, which only a DAX file
 * grants: there stores need no msync to be durable, and the flushes
 * alone decide it; without DAX the mapping is emul's.
 * MAP_POPULATE: take the page faults now, at mount, rather than one per
 * 4 KiB on the durable path (they cost more than the store). */
static void *map_range(struct media *m, void *addr, size_t len, int fd, uint64_t off)
{
	int fixed = addr ? MAP_FIXED : 0;
	int prot = PROT_READ | PROT_WRITE;
	if (m->kind == MEDIA_PMEM) {
		void *p =
		    mmap(addr, len, prot, MAP_SHARED_VALIDATE | MAP_SYNC | MAP_POPULATE | fixed, fd,
		         (off_t)off);
		if (p != MAP_FAILED) {
			m->is_pmem = 1;
			return p;
		}
		m->is_pmem = 0;
	}
	return mmap(addr, len, prot, MAP_SHARED | MAP_POPULATE | fixed, fd, (off_t)off);
}

/* Address space of len bytes, PROT_NONE and nothing committed, starting
 * on a 2 MiB boundary: a DAX file or a tmpfs of huge pages is mapped with
 * 2 MiB pages only where the address is so aligned (the kernel aligns a
 * file mapping it places itself, not one placed over a hold).  NULL if
 * there is none. */
static void *hold_space(size_t len)
{
	const uintptr_t huge = 2u << 20;
	uint8_t *p =
	    mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(huge - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + huge > a)
		munmap(a + len, (size_t)(p + huge - a));
	return a;
}

/* Maps the medium's m->size bytes of fd, with MEDIA_GROWABLE inside a
 * hold of address space that media_grow maps the file further into:
 * readers keep pointers into the mapping. */
static int map_file(struct media *m, int fd, int flags, char *err, size_t errlen)
{
	size_t len = page_round(m->size);
	void *hold = NULL;
	if (flags & MEDIA_GROWABLE) {
		m->reserved_len = len + (size_t)MEDIA_GROW_RESERVE;
		hold = hold_space(m->reserved_len);
		if (!hold)
			m->reserved_len = 0; /* it maps, but cannot grow */
	}
	void *base = map_range(m, hold, len, fd, 0);
	int e = errno;
	if (base == MAP_FAILED) {
		if (hold)
			munmap(hold, m->reserved_len);
		media_errf(err, errlen, m->path, "cannot map %llu bytes: %s",
		           (unsigned long long)m->size, strerror(e));
		return -e;
	}
	m->base = base;
	m->mapped_len = len;
	return 0;
}

static int pmem_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen)
{
	/* A given descriptor, or a file: mapped like emul's (with MAP_SYNC
	 * where the file is DAX), flushed with libpmem's instructions. */
	int rc = pmem_ready(m, err, errlen);
	if (rc)
		return rc;
	struct stat st;
	if (m->given_fd >= 0 || stat(m->path, &st) != 0 || !S_ISCHR(st.st_mode))
		return emul_open(m, size, flags, err, errlen);
	/* Device DAX cannot be created or resized: libpmem maps it whole, and
	 * the size check below decides. */
	size_t mapped = 0;
	int is_pmem = 0;
	void *base = PMEM(map_file)(m->path, 0, 0, 0600, &mapped, &is_pmem);
	if (base == NULL) {
		int e = errno ? errno : EIO;
		media_errf(err, errlen, m->path, "cannot map as persistent memory: %s",
		           PMEM(errormsg)());
		return -e;
	}
	if (mapped == 0 || (size != 0 && (uint64_t)mapped != size &&
	                    !((flags & MEDIA_PREFIX) && (uint64_t)mapped > size))) {
		if (mapped == 0)
			media_errf(err, errlen, m->path, "the medium is empty (size 0)");
		else
			media_errf(err, errlen, m->path,
			           "size %llu does not match the manifest's %llu",
			           (unsigned long long)mapped, (unsigned long long)size);
		PMEM(unmap)(base, mapped);
		return -EINVAL;
	}
	/* Not real pmem: the brief is to use the cache flushes anyway,
	 * silently; durability then is emul's. */
	m->base = base;
	m->mapped_len = mapped;
	m->size = size ? size : mapped;
	m->is_pmem = is_pmem;
	m->by_libpmem = true;
	return 0;
}

static void pmem_close(struct media *m)
{
	if (m->by_libpmem)
		PMEM(unmap)(m->base, m->mapped_len);
	else
		munmap(m->base, m->reserved_len ? m->reserved_len : m->mapped_len);
}

static int emul_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen)
{
	int rc = pmem_ready(m, err, errlen);
	if (rc)
		return rc;
	int fd = media_open_fd(m, size, flags, false, err, errlen);
	if (fd < 0)
		return fd;
	rc = map_file(m, fd, flags, err, errlen);
	close(fd); /* the mapping keeps the file */
	return rc;
}

static void emul_close(struct media *m)
{
	munmap(m->base, m->reserved_len ? m->reserved_len : m->mapped_len);
}

/* The file extended, then mapped further at the end of the mapping, into
 * the held address space; m->size last, once the bytes are there. */
static int map_grow(struct media *m, uint64_t size, char *err, size_t errlen)
{
	size_t len = page_round(size);
	if (!m->reserved_len || len > m->reserved_len || m->given_fd >= 0) {
		media_errf(err, errlen, m->path,
		           "the mapping cannot grow to %llu bytes in place (it grows by %llu "
		           "bytes at most, while mounted)",
		           (unsigned long long)size,
		           (unsigned long long)(m->reserved_len ? MEDIA_GROW_RESERVE : 0));
		return -EOPNOTSUPP;
	}
	int fd = open(m->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		media_errf(err, errlen, m->path, "cannot open: %s", strerror(e));
		return -e;
	}
	int rc = media_extend_fd(m, fd, size, err, errlen);
	if (!rc && len > m->mapped_len) {
		void *p =
		    map_range(m, m->base + m->mapped_len, len - m->mapped_len, fd, m->mapped_len);
		if (p == MAP_FAILED) {
			rc = -errno;
			media_errf(err, errlen, m->path, "cannot map %llu bytes more: %s",
			           (unsigned long long)(len - m->mapped_len), strerror(-rc));
			/* A failed MAP_FIXED may have unmapped part of the hold:
			 * held again, or this medium grows no more. */
			if (mmap(m->base + m->mapped_len, len - m->mapped_len, PROT_NONE,
			         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
			         0) == MAP_FAILED)
				m->reserved_len = 0;
		} else {
			m->mapped_len = len;
		}
	}
	close(fd);
	if (!rc)
		__atomic_store_n(&m->size, size, __ATOMIC_RELEASE);
	return rc;
}

static int map_read(struct media *m, uint64_t off, void *buf, size_t len)
{
	memcpy(buf, m->base + off, len);
	return 0;
}

static int map_write(struct media *m, uint64_t off, const void *buf, size_t len)
{
	memcpy(m->base + off, buf, len);
	return 0;
}

static int map_zero(struct media *m, uint64_t off, size_t len)
{
	memset(m->base + off, 0, len);
	return 0;
}

static void map_flush(struct media *m, uint64_t off, size_t len)
{
	PMEM(flush)(m->base + off, len);
}

/* libpmem's copy streams large ranges past the cache (non-temporal
 * stores) and flushes the rest: a 4 KiB record costs about half of a
 * memcpy and a flush of its 64 lines, which first brings them in. */
static int map_store(struct media *m, uint64_t off, const void *buf, size_t len)
{
	PMEM(memcpy_nodrain)(m->base + off, buf, len);
	return 0;
}

static int map_fence(struct media *m)
{
	PMEM(drain)();
	return 0;
}

const struct media_ops media_pmem_ops = {
    .open = pmem_open,
    .close = pmem_close,
    .grow = map_grow,
    .read = map_read,
    .write = map_write,
    .zero = map_zero,
    .flush = map_flush,
    .store = map_store,
    .fence = map_fence,
    .write_implies_flush = false,
};

const struct media_ops media_emul_ops = {
    .open = emul_open,
    .close = emul_close,
    .grow = map_grow,
    .read = map_read,
    .write = map_write,
    .zero = map_zero,
    .flush = map_flush,
    .store = map_store,
    .fence = map_fence,
    .write_implies_flush = false,
};
