/*
 * test_inode_hold.c - the inode buffer an open file's vnode holds for its
 * writes (src/libfs/vnode.c, vnode_inode): held from the first write,
 * given back at the last close; a write after a checkpoint cleaned the
 * held buffer marks it dirty again, so the next checkpoint stores the
 * inode (its size survives a remount); a write record naming an inode that is not a regular file is
 * still refused when the vnode holds the buffer.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/cache.h"
#include "libfs/fs_internal.h"
#include "libfs/oprec.h"
#include "log/log_format.h"
#include "testvol.h"

/* Buffers someone holds that are neither dirty nor in flight: after a
 * checkpoint, the ones the volume's vnodes hold. */
static size_t held_clean(cairn_fs *fs)
{
	struct cache_stats st;
	cache_stats(fs->sh.cache, &st);
	return st.buffers - st.clean_unused - st.dirty - st.inflight;
}

static void checkpoint(cairn_fs *fs)
{
	assert_int_equal(fs_checkpoint(fs, 0), 0);
}

static void test_held_while_open(void **state)
{
	cairn_fs *fs = TV_FS(state);
	checkpoint(fs);
	size_t before = held_clean(fs);
	char buf[4096];
	memset(buf, 'h', sizeof(buf));
	int fd[3];
	for (int i = 0; i < 3; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/held%d", i);
		fd[i] = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644));
		assert_int_equal(tv_write_full(fs, fd[i], buf, sizeof(buf)), sizeof(buf));
	}
	checkpoint(fs);
	assert_true(held_clean(fs) > before);
	for (int i = 0; i < 3; i++)
		TV_OK(cairn_close(fs, fd[i]));
	checkpoint(fs);
	assert_int_equal(held_clean(fs), before);
}

/* Each write's size lands in the inode on the media: after each
 * checkpoint the log no longer holds the records that made it. */
static void test_dirty_again_after_checkpoint(void **state)
{
	struct testvol *tv = *state;
	char buf[4096];
	memset(buf, 'd', sizeof(buf));
	int fd = TV_OK(cairn_open(tv->fs, "/grows", O_CREAT | O_WRONLY, 0644));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tv_write_full(tv->fs, fd, buf, sizeof(buf)), sizeof(buf));
		/* The write changed only the inode among the cached blocks; a
		 * digest may dirty it too, so this is looked at first. */
		struct cache_stats st;
		cache_stats(tv->fs->sh.cache, &st);
		if (i > 0) /* the first write follows the create */
			assert_int_equal(st.dirty, 1);
		checkpoint(tv->fs);
	}
	TV_OK(cairn_close(tv->fs, fd));
	TV_OK(tv_unmount(tv));
	assert_non_null(tv_mount(tv, NULL));
	assert_int_equal(tv_stat(tv->fs, "/grows").st_size, 3 * sizeof(buf));
}

/* A directory held open by a vnode (as the FUSE front end's lookups
 * hold one): a write record naming it is damage, not a write. */
static void test_write_record_type_checked(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	struct stat st = tv_stat(fs, "/d");
	pthread_rwlock_wrlock(&fs->lock);
	struct vnode *vn = vnode_get(fs, st.st_ino);
	assert_non_null(vn);
	vn->open_count++;
	struct log_rec_hdr h;
	memset(&h, 0, sizeof(h));
	h.type = OP_WRITE;
	h.seq = 1;
	h.payload_len = 8;
	h.args[0] = st.st_ino;
	int rc = apply_record(fs, &h, "datadata", 0);
	vn->open_count--;
	vnode_maybe_free(fs, vn);
	pthread_rwlock_unlock(&fs->lock);
	assert_int_equal(rc, -EUCLEAN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_held_while_open, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_again_after_checkpoint, tv_setup,
	                                    tv_teardown),
	    cmocka_unit_test_setup_teardown(test_write_record_type_checked, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
