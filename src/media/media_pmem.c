/*
 * media_pmem.c - the byte-addressable kinds: pmem (a DAX file or device
 * mapped by libpmem) and emul (a DRAM file, normally in /dev/shm, mapped
 * MAP_SHARED and treated exactly like pmem).
 *
 * Owns: the mapping of one such medium.  May call: libpmem, mmap, and
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
#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/media_internal.h"

static int emul_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen);

static int pmem_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen)
{
	/* A given descriptor cannot go through pmem_map_file, which opens by
	 * name: it is mapped like emul's, and flushed with the same
	 * instructions. */
	if (m->given_fd >= 0)
		return emul_open(m, size, flags, err, errlen);
	struct stat st;
	bool exists = stat(m->path, &st) == 0;
	/* Device DAX cannot be created or resized: map it whole and let the
	 * size check below decide. */
	bool create = (flags & MEDIA_CREATE) && !(exists && S_ISCHR(st.st_mode));
	size_t mapped = 0;
	int is_pmem = 0;
	void *base = pmem_map_file(m->path, create ? (size_t)size : 0,
	                           create ? PMEM_FILE_CREATE : 0, 0600, &mapped, &is_pmem);
	if (base == NULL) {
		int e = errno ? errno : EIO;
		media_errf(err, errlen, m->path, "cannot map as persistent memory: %s",
		           pmem_errormsg());
		return -e;
	}
	if (mapped == 0 || (size != 0 && (uint64_t)mapped != size)) {
		if (mapped == 0)
			media_errf(err, errlen, m->path, "the medium is empty (size 0)");
		else
			media_errf(err, errlen, m->path,
			           "size %llu does not match the manifest's %llu",
			           (unsigned long long)mapped, (unsigned long long)size);
		pmem_unmap(base, mapped);
		return -EINVAL;
	}
	/* Not real pmem (e.g. a DAX-less file): the brief is to use the cache
	 * flushes anyway, silently; durability then is emul's. */
	m->base = base;
	m->mapped_len = mapped;
	m->size = mapped;
	m->is_pmem = is_pmem;
	return 0;
}

static void pmem_close(struct media *m)
{
	pmem_unmap(m->base, m->mapped_len);
}

static int emul_open(struct media *m, uint64_t size, int flags, char *err, size_t errlen)
{
	int fd = media_open_fd(m, size, flags, false, err, errlen);
	if (fd < 0)
		return fd;
	/* MAP_POPULATE: take the page faults now, at mount, rather than one
	 * per 4 KiB on the durable path (they cost more than the store). */
	void *base =
	    mmap(NULL, (size_t)m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	int e = errno;
	close(fd); /* the mapping keeps the file */
	if (base == MAP_FAILED) {
		media_errf(err, errlen, m->path, "cannot map %llu bytes: %s",
		           (unsigned long long)m->size, strerror(e));
		return -e;
	}
	m->base = base;
	m->mapped_len = (size_t)m->size;
	return 0;
}

static void emul_close(struct media *m)
{
	munmap(m->base, m->mapped_len);
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
	pmem_flush(m->base + off, len);
}

/* libpmem's copy streams large ranges past the cache (non-temporal
 * stores) and flushes the rest: a 4 KiB record costs about half of a
 * memcpy and a flush of its 64 lines, which first brings them in. */
static int map_store(struct media *m, uint64_t off, const void *buf, size_t len)
{
	pmem_memcpy_nodrain(m->base + off, buf, len);
	return 0;
}

static int map_fence(struct media *m)
{
	pmem_drain();
	return 0;
}

const struct media_ops media_pmem_ops = {
    .open = pmem_open,
    .close = pmem_close,
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
    .read = map_read,
    .write = map_write,
    .zero = map_zero,
    .flush = map_flush,
    .store = map_store,
    .fence = map_fence,
    .write_implies_flush = false,
};
