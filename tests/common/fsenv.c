/*
 * fsenv.c - the scratch shared area of the fs-layer unit tests (fsenv.h).
 */
#include "fsenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs/alloc.h"
#include "fs/cache.h"
#include "fs/format.h"
#include "media/media.h"

struct fsenv *fsenv_new(const char *tag, uint64_t nblocks, size_t cache_max)
{
	static unsigned seq;
	struct fsenv *e = calloc(1, sizeof(*e));
	char err[256];
	snprintf(e->path, sizeof(e->path), "/dev/shm/cairn-test-%s-%d-%u", tag, (int)getpid(),
		 seq++);
	if (media_open(&e->m, MEDIA_EMUL, e->path, nblocks * FS_BLOCK_SIZE, MEDIA_CREATE, err,
		       sizeof(err)))
		fail_msg("media_open %s: %s", e->path, err);
	/* Unlinked at once: the mapping lives on, and a failed test (cmocka
	 * jumps past fsenv_free) leaves nothing in /dev/shm. */
	unlink(e->path);
	assert_int_equal(cache_create(&e->c, e->m, cache_max), 0);
	uint64_t bblocks = (nblocks + 32767) / 32768;
	assert_true(FSENV_BMAP_START + bblocks <= FSENV_FIRST_DATA);
	assert_int_equal(alloc_format(e->c, FSENV_BMAP_START, bblocks, nblocks, FSENV_FIRST_DATA), 0);
	assert_int_equal(alloc_open(&e->a, e->c, FSENV_BMAP_START, bblocks, nblocks, FSENV_FIRST_DATA),
			 0);
	e->fx.cache = e->c;
	e->fx.balloc = e->a;
	e->nblocks = nblocks;
	return e;
}

void fsenv_free(struct fsenv *e)
{
	alloc_close(e->a);
	cache_destroy(e->c);
	media_close(e->m);
	free(e);
}

uint64_t fsenv_used_blocks(const struct fsenv *e)
{
	return (e->nblocks - FSENV_FIRST_DATA) - alloc_free_count(e->a);
}
