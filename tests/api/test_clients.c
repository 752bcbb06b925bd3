/*
 * test_clients.c - the daemon's side of client logs (src/libfs/clients.h)
 * where the crash-state checker does not reach: a client log whose records
 * could not be ingested when its client ended is kept for the next mount,
 * and a client that starts before then gets another slot, so that the
 * kept records are applied by that mount and not lost; on a volume with a
 * small log, the largest record a client may write is ingested.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libfs/clients.h"
#include "libfs/fs_internal.h"
#include "log/clog_format.h"
#include "log/log.h"
#include "log/log_format.h"
#include "media/media.h"
#include "testvol.h"

static int no_replay(void *arg, const struct log_rec_hdr *h, const void *p, uint64_t off)
{
	(void)arg;
	(void)h;
	(void)p;
	(void)off;
	return 0;
}

/* The slot of a client log from its file's name, "<log part>.client<N>". */
static int fd_slot(int fd)
{
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	const char *dot = strrchr(target, '.');
	int slot = -1;
	if (!dot || sscanf(dot, ".client%d", &slot) != 1)
		fail_msg("%s is not a client log", target);
	return slot;
}

/* One record in the log behind st, as a client writes it. */
static void client_record(const struct clog_start *st, uint64_t ino, uint64_t epoch,
                          const char *data)
{
	char err[512] = "";
	struct media *m = NULL;
	struct log *l = NULL;
	int rc = media_open_given(&m, (enum media_kind)st->media_kind, st->log_fd, "client log",
	                          err, sizeof(err));
	if (!rc)
		rc = log_open(&l, m, st->log_id, err, sizeof(err));
	if (!rc)
		rc = log_recover(l, LOG_RING_START, 1, no_replay, NULL, 1);
	uint64_t args[LOG_REC_ARGS] = {ino, 0, epoch};
	struct iovec iov = {(void *)data, strlen(data)};
	struct log_pos pos;
	if (!rc)
		rc = log_append(l, CLOG_REC_WRITE, args, &iov, 1, &pos);
	if (!rc)
		rc = log_commit(l, pos.seq);
	log_close(l);
	media_close(m);
	if (rc)
		fail_msg("a client record: %s %s", tv_errname(-rc), err);
}

static void test_kept_log_not_reused(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_RDWR, 0644));
	struct stat sb;
	TV_OK(cairn_fstat(fs, fd, &sb));

	struct clog *c = NULL;
	struct clog_start st;
	TV_EQ(clog_start(fs, -1, &c, &st), 0);
	int slot = fd_slot(st.log_fd);
	uint32_t index;
	uint64_t epoch;
	TV_EQ(clog_grant(fs, c, sb.st_ino, &index, &epoch), 0);
	client_record(&st, sb.st_ino, epoch, "kept");
	close(st.log_fd);
	close(st.state_fd);
	/* The ingest fails (a medium stopped the volume, say): the files
	 * stay for the next mount. */
	char why[300];
	fs->failed = 1;
	clog_end(fs, c, why, sizeof(why));
	fs->failed = 0;
	char statep[PATH_MAX + 32];
	snprintf(statep, sizeof(statep), "%s.client%d.state", fs->vol.mf.path[PART_LOG], slot);
	TV_EQ(access(statep, F_OK), 0);

	/* A client that starts now does not take their slot. */
	struct clog *c2 = NULL;
	struct clog_start st2;
	TV_EQ(clog_start(fs, -1, &c2, &st2), 0);
	if (fd_slot(st2.log_fd) == slot)
		fail_msg("a new client log took slot %d, whose records wait for the next mount",
		         slot);
	close(st2.log_fd);
	close(st2.state_fd);
	clog_end(fs, c2, why, sizeof(why));
	TV_OK(cairn_close(fs, fd));

	/* The next mount applies the kept record. */
	TV_OK(tv_unmount(tv));
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	char buf[8] = "";
	fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "kept", 4);
	TV_OK(cairn_close(fs, fd));
	TV_EQ(access(statep, F_OK), -1); /* applied, then removed */
	tv_destroy(tv);
}

/* On a volume whose log is small, the largest record a client may write
 * (a quarter of its own log's ring) is ingested: its copy fits in one
 * record of the volume's log. */
static void test_largest_record_ingested(void **state)
{
	(void)state;
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 256 * TV_KiB;
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/big", O_CREAT | O_RDWR, 0644));
	struct stat sb;
	TV_OK(cairn_fstat(fs, fd, &sb));
	struct clog *c = NULL;
	struct clog_start st;
	TV_EQ(clog_start(fs, -1, &c, &st), 0);
	uint32_t index;
	uint64_t epoch;
	TV_EQ(clog_grant(fs, c, sb.st_ino, &index, &epoch), 0);

	char err[512] = "";
	struct media *m = NULL;
	struct log *l = NULL;
	TV_EQ(media_open_given(&m, (enum media_kind)st.media_kind, st.log_fd, "client log", err,
	                       sizeof(err)),
	      0);
	TV_EQ(log_open(&l, m, st.log_id, err, sizeof(err)), 0);
	TV_EQ(log_recover(l, LOG_RING_START, 1, no_replay, NULL, 1), 0);
	size_t len = (size_t)log_max_payload(l);
	char *buf = malloc(len);
	assert_non_null(buf);
	tv_fill(buf, len, 9);
	uint64_t args[LOG_REC_ARGS] = {sb.st_ino, 0, epoch};
	struct iovec iov = {buf, len};
	struct log_pos pos;
	TV_EQ(log_append(l, CLOG_REC_WRITE, args, &iov, 1, &pos), 0);
	TV_EQ(log_commit(l, pos.seq), 0);
	log_close(l);
	media_close(m);
	close(st.log_fd);
	close(st.state_fd);

	TV_EQ(clients_ingest(fs), 0);
	tv_expect_at(fs, fd, 0, buf, len);
	char why[300];
	clog_end(fs, c, why, sizeof(why));
	TV_EQ(why[0], 0);
	TV_OK(cairn_close(fs, fd));
	free(buf);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kept_log_not_reused),
	    cmocka_unit_test(test_largest_record_ingested),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
