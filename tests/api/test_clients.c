/*
 * test_clients.c - the daemon's side of client logs (src/libfs/clients.h)
 * where the crash-state checker does not reach: a client log whose records
 * could not be ingested when its client ended is kept for the next mount,
 * and a client that starts before then gets another slot, so that the
 * kept records are applied by that mount and not lost; on a volume with a
 * small log, the largest record a client may write is ingested; and the
 * daemon trusts nothing in a client's log: records of any shape a client
 * could write, with valid checksums, and raw garbage, are applied only when
 * they are writes under the client's grant, and a forged one ends the log
 * with nothing after it applied, the volume consistent; and a kept log
 * whose files are not whole is never dropped unasked: the mount refuses
 * the volume, naming it, and only fsck's repair removes it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fsck/fsck.h"
#include "libfs/clients.h"
#include "libfs/fs_internal.h"
#include "log/clog_check.h"
#include "log/clog_format.h"
#include "log/log.h"
#include "log/log_format.h"
#include "media/media.h"
#include "testvol.h"
#include "util/checksum.h"

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
		rc = log_recover(l, LOG_RING_START, 1, log_replay_none, NULL, 1);
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

/* A mount of tv with /f open and a client log started: kept_log's and
 * test_kept_log_not_reused's. */
struct kept {
	cairn_fs *fs;
	int fd, slot;
	struct stat sb;
	struct clog *c;
	struct clog_start st;
};

static void keep_log(struct testvol *tv, struct kept *k)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	k->fs = tv_mount(tv, &mo);
	assert_non_null(k->fs);
	k->fd = TV_OK(cairn_open(k->fs, "/f", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fstat(k->fs, k->fd, &k->sb));
	k->c = NULL;
	TV_EQ(clog_start(k->fs, -1, getuid(), getgid(), &k->c, &k->st), 0);
	k->slot = fd_slot(k->st.log_fd);
}

/* The grant of /f to k's client: its epoch. */
static uint64_t grant_f(struct kept *k)
{
	uint32_t index;
	uint64_t epoch;
	TV_EQ(clog_grant(k->fs, k->c, k->sb.st_ino, &index, &epoch), 0);
	return epoch;
}

/* Ends k's client with its ingest failing (a medium stopped the volume,
 * say): the files stay for the next mount. */
static void end_kept(struct kept *k)
{
	close(k->st.log_fd);
	close(k->st.state_fd);
	char why[300];
	k->fs->failed = 1;
	clog_end(k->fs, k->c, why, sizeof(why));
	k->fs->failed = 0;
}

static void test_kept_log_not_reused(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	struct kept k;
	keep_log(tv, &k);
	cairn_fs *fs = k.fs;
	int fd = k.fd, slot = k.slot;
	uint64_t epoch = grant_f(&k);
	client_record(&k.st, k.sb.st_ino, epoch, "kept");
	char why[300];
	end_kept(&k);
	char statep[PATH_MAX + 32];
	snprintf(statep, sizeof(statep), "%s.client%d.state", fs->vol.mf.path[PART_LOG], slot);
	TV_EQ(access(statep, F_OK), 0);

	/* A client that starts now does not take their slot. */
	struct clog *c2 = NULL;
	struct clog_start st2;
	TV_EQ(clog_start(fs, -1, getuid(), getgid(), &c2, &st2), 0);
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

/* Copies the file at from to to. */
static void copy_file(const char *from, const char *to)
{
	int in = TV_OK(open(from, O_RDONLY));
	int out = TV_OK(open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		TV_EQ(write(out, buf, (size_t)n), n);
	TV_EQ(n, 0);
	close(in);
	close(out);
}

/* A client log kept for the next mount (its ingest failed), holding a
 * write to /f at offset 0 of each of `records` in turn; the volume is
 * then unmounted.  With no records, a slot as a daemon that died right
 * after making it leaves it (its files copied while the client held them,
 * put back after).  Returns the slot; statep and logp get its files. */
static int kept_logs(struct testvol *tv, const char *const *records, char *statep, char *logp,
                     size_t len)
{
	struct kept k;
	keep_log(tv, &k);
	snprintf(statep, len, CLOG_STATE_NAME, k.fs->vol.mf.path[PART_LOG], k.slot);
	snprintf(logp, len, CLOG_LOG_NAME, k.fs->vol.mf.path[PART_LOG], k.slot);
	char saved[2][PATH_MAX + 32];
	snprintf(saved[0], sizeof(saved[0]), "%s/saved.state", tv->root);
	snprintf(saved[1], sizeof(saved[1]), "%s/saved.log", tv->root);
	int record = records[0] != NULL;
	if (record) {
		uint64_t epoch = grant_f(&k);
		for (int i = 0; records[i]; i++)
			client_record(&k.st, k.sb.st_ino, epoch, records[i]);
	} else {
		copy_file(statep, saved[0]);
		copy_file(logp, saved[1]);
	}
	end_kept(&k);
	TV_OK(cairn_close(k.fs, k.fd));
	TV_OK(tv_unmount(tv));
	if (!record) {
		TV_OK(rename(saved[0], statep));
		TV_OK(rename(saved[1], logp));
	}
	TV_EQ(access(statep, F_OK), 0);
	return k.slot;
}

static int kept_log(struct testvol *tv, int record, char *statep, char *logp, size_t len)
{
	static const char *const one[] = {"kept", NULL}, *const none[] = {NULL};
	return kept_logs(tv, record ? one : none, statep, logp, len);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = TV_OK(open(path, O_RDWR));
	uint8_t b;
	TV_EQ(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	TV_EQ(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* The offset in the state file at statep of its one grant in use. */
static off_t used_grant(const char *statep)
{
	int fd = TV_OK(open(statep, O_RDONLY));
	struct clog_grant g[CLOG_GRANTS];
	TV_EQ(pread(fd, g, sizeof(g), CLOG_GRANTS_OFF), (ssize_t)sizeof(g));
	close(fd);
	off_t at = -1;
	for (int i = 0; i < CLOG_GRANTS; i++)
		if (g[i].ino) {
			assert_int_equal(at, -1);
			at = CLOG_GRANTS_OFF + (off_t)i * (off_t)sizeof(g[i]);
		}
	assert_true(at >= 0);
	return at;
}

/* Makes the state file at statep one of version 1, whose epochs are not
 * sealed. */
static void make_version_1(const char *statep)
{
	int fd = TV_OK(open(statep, O_RDWR));
	struct clog_header h;
	TV_EQ(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	h.version = CLOG_VERSION_UNSEALED;
	h.checksum = checksum64(&h, offsetof(struct clog_header, checksum));
	TV_EQ(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
}

/* A read-write mount fails with EUCLEAN, saying `what` of the slot. */
static void mount_refused(struct testvol *tv, int slot, const char *what)
{
	char name[32];
	snprintf(name, sizeof(name), "client log %d", slot);
	errno = 0;
	cairn_fs *fs = cairn_mount(tv->dir, NULL);
	if (fs)
		fail_msg("a volume whose client log is damaged (%s) was mounted", what);
	assert_int_equal(errno, EUCLEAN);
	const char *e = cairn_last_error();
	if (!strstr(e, name) || !strstr(e, what) || !strstr(e, "fsck --repair"))
		fail_msg("the refusal does not say what is wrong: %s", e);
}

/* What /f holds, up to 7 bytes. */
static void assert_f(struct testvol *tv, const char *want)
{
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	char buf[8] = "";
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_EQ(cairn_pread(fs, fd, buf, 7, 0), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	TV_OK(cairn_close(fs, fd));
	TV_OK(tv_unmount(tv));
}

/* The problems fsck finds, but for client-log ones, fail the test. */
static int client_log_problems(struct testvol *tv, int repair, int *result)
{
	struct fsck_opts o = {.repair = repair};
	struct fsck_report r;
	*result = fsck_run(tv->dir, &o, &r);
	int n = 0;
	for (size_t k = 0; k < r.found.n; k++) {
		if (!strncmp(fsck_code_name(r.found.v[k].code), "client-log", 10))
			n++;
		else
			fail_msg("fsck found another problem: %s", r.found.v[k].msg);
	}
	fsck_report_free(&r);
	return n;
}

/* fsck finds the slot's one client-log problem, and with repair mends
 * it. */
static void fsck_finds_one(struct testvol *tv, int repair)
{
	int result;
	TV_EQ(client_log_problems(tv, repair, &result), 1);
	TV_EQ(result, repair ? FSCK_REPAIRED : FSCK_PROBLEMS);
}

/* fsck reports the slot's problem and repairs it (its recovery mount
 * applies what is left): the state file is gone, and /f holds want. */
static void report_and_repair(struct testvol *tv, const char *statep, const char *want)
{
	fsck_finds_one(tv, 0);
	fsck_finds_one(tv, 1);
	TV_EQ(access(statep, F_OK), -1);
	assert_f(tv, want);
}

/* A kept log whose state file or log is damaged may hold writes its
 * client was told are durable: a read-write mount refuses the volume and
 * keeps the files (a read-only one shows the volume without them); fsck
 * reports it, and its repair alone removes it.  A slot whose state file
 * was never written and whose log nobody wrote (a start a crash cut
 * short) goes at the next mount with nothing lost. */
static void test_damaged_kept_log_refused(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	char statep[PATH_MAX + 32], logp[PATH_MAX + 32];
	int slot = kept_log(tv, 1, statep, logp, sizeof(statep));
	off_t at = offsetof(struct clog_header, log_size);
	flip_byte(statep, at);
	mount_refused(tv, slot, "checksum mismatch");
	TV_EQ(access(statep, F_OK), 0);
	TV_EQ(access(logp, F_OK), 0);
	struct cairn_mount_opts ro = {.read_only = 1};
	cairn_fs *fs = cairn_mount(tv->dir, &ro);
	assert_non_null(fs);
	TV_OK(cairn_unmount(fs));
	TV_EQ(access(statep, F_OK), 0);
	flip_byte(statep, at); /* as it was: nothing was lost meanwhile */
	assert_f(tv, "kept");
	TV_EQ(access(statep, F_OK), -1);

	/* The header damaged, the rest whole: repair makes it again from the
	 * progress copy, the log and the grants, and the write applies. */
	static const char *const again[] = {"agn1", NULL};
	slot = kept_logs(tv, again, statep, logp, sizeof(statep));
	flip_byte(statep, offsetof(struct clog_header, volume_uuid));
	mount_refused(tv, slot, "checksum mismatch");
	if (!strstr(cairn_last_error(), "losing nothing"))
		fail_msg("the refusal does not say repair loses nothing: %s", cairn_last_error());
	report_and_repair(tv, statep, "agn1");
	/* Not when a grant is damaged too: nothing says the file is this
	 * log's, and repair removes it. */
	slot = kept_logs(tv, again, statep, logp, sizeof(statep));
	flip_byte(statep, offsetof(struct clog_header, volume_uuid));
	flip_byte(statep, used_grant(statep) + offsetof(struct clog_grant, ino));
	mount_refused(tv, slot, "checksum mismatch");
	if (!strstr(cairn_last_error(), "drops the log"))
		fail_msg("the refusal does not say repair drops the log: %s", cairn_last_error());
	report_and_repair(tv, statep, "agn1");

	/* A grant damaged: its inode, its epoch's count, its seal.  Its
	 * records would be skipped as ones written after a revocation. */
	static const off_t grant_bytes[] = {offsetof(struct clog_grant, ino),
	                                    offsetof(struct clog_grant, epoch),
	                                    offsetof(struct clog_grant, epoch) + 7};
	for (int k = 0; k < 3; k++) {
		slot = kept_log(tv, 1, statep, logp, sizeof(statep));
		at = used_grant(statep) + grant_bytes[k];
		flip_byte(statep, at);
		mount_refused(tv, slot, "does not match its seal");
		fsck_finds_one(tv, 0);
		flip_byte(statep, at);
		assert_f(tv, "kept");
	}
	/* A state file of version 1 (made before epochs were sealed) is
	 * applied as it is: its epochs are bare counts. */
	slot = kept_log(tv, 1, statep, logp, sizeof(statep));
	make_version_1(statep);
	assert_f(tv, "kept");
	uint8_t id[16] = {1, 2, 3};
	struct clog_grant bare = {.ino = 7, .epoch = 3};
	TV_EQ(clog_grant_whole(CLOG_VERSION_UNSEALED, id, &bare), 1);
	TV_EQ(clog_grant_whole(CLOG_VERSION, id, &bare), 0);
	bare.epoch = clog_epoch_seal(id, 7, 3);
	TV_EQ(clog_grant_whole(CLOG_VERSION, id, &bare), 1);
	bare.ino = 8;
	TV_EQ(clog_grant_whole(CLOG_VERSION, id, &bare), 0);

	/* The state file cut short; the log's superblocks damaged. */
	for (int k = 0; k < 2; k++) {
		slot = kept_log(tv, 1, statep, logp, sizeof(statep));
		struct stat lst;
		TV_OK(stat(logp, &lst));
		if (k == 0) {
			TV_OK(truncate(statep, 100));
		} else { /* both copies */
			flip_byte(logp, 0);
			flip_byte(logp, lst.st_size - LOG_BLOCK);
		}
		mount_refused(tv, slot, k == 0 ? "cut short" : "its log");
		report_and_repair(tv, statep, "kept"); /* the first write; this one is lost */
		TV_EQ(access(logp, F_OK), -1);
	}

	/* The second of three records damaged after the third was written:
	 * refused; repair cuts the log there, and the first one applies. */
	static const char *const three[] = {"one1", "two2", "six6", NULL};
	slot = kept_logs(tv, three, statep, logp, sizeof(statep));
	/* Each record here: a 64-byte header and its payload in 64 bytes. */
	flip_byte(logp, LOG_RING_START + 2 * 64 + 64);
	mount_refused(tv, slot, "would be lost");
	report_and_repair(tv, statep, "one1");
	/* Undamaged, all three apply. */
	slot = kept_logs(tv, three, statep, logp, sizeof(statep));
	assert_f(tv, "six6");

	/* A header never written, with the log's first record header zeroed
	 * too: its payload is still there, so the log was written. */
	slot = kept_log(tv, 1, statep, logp, sizeof(statep));
	{
		static const uint8_t zero_header[sizeof(struct clog_header)];
		static const uint8_t zero_record[64];
		int sfd = TV_OK(open(statep, O_WRONLY));
		TV_EQ(pwrite(sfd, zero_header, sizeof(zero_header), 0),
		      (ssize_t)sizeof(zero_header));
		close(sfd);
		int lfd = TV_OK(open(logp, O_WRONLY));
		TV_EQ(pwrite(lfd, zero_record, sizeof(zero_record), LOG_RING_START),
		      (ssize_t)sizeof(zero_record));
		close(lfd);
	}
	mount_refused(tv, slot, "never written");
	report_and_repair(tv, statep, "six6"); /* "kept" went with the repair */

	/* A start cut short before its header was stored. */
	slot = kept_log(tv, 0, statep, logp, sizeof(statep));
	int fd = TV_OK(open(statep, O_WRONLY));
	static const uint8_t zero[sizeof(struct clog_header)];
	TV_EQ(pwrite(fd, zero, sizeof(zero), 0), (ssize_t)sizeof(zero));
	close(fd);
	int result;
	TV_EQ(client_log_problems(tv, 0, &result), 0);
	TV_EQ(result, FSCK_CLEAN);
	assert_f(tv, "six6");
	TV_EQ(access(statep, F_OK), -1);
	TV_EQ(access(logp, F_OK), -1);
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
	TV_EQ(clog_start(fs, -1, getuid(), getgid(), &c, &st), 0);
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
	TV_EQ(log_recover(l, LOG_RING_START, 1, log_replay_none, NULL, 1), 0);
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

/* ---- records of any shape --------------------------------------------- */

#define SPAN (256 * 1024) /* the granted file's bytes the writes land in */
#define ROUNDS 40
#define RECORDS 60

struct rclient {
	cairn_fs *fs;
	struct clog *c;
	struct clog_start st;
	struct media *m;
	struct log *l;
	uint64_t credit, epoch;
};

static void rclient_open(struct rclient *r, cairn_fs *fs, uint64_t ino)
{
	char err[512] = "";
	uint32_t index;
	r->fs = fs;
	TV_EQ(clog_start(fs, -1, getuid(), getgid(), &r->c, &r->st), 0);
	TV_EQ(clog_grant(fs, r->c, ino, &index, &r->epoch), 0);
	r->credit = r->st.credit;
	TV_EQ(media_open_given(&r->m, (enum media_kind)r->st.media_kind, r->st.log_fd, "client log",
	                       err, sizeof(err)),
	      0);
	TV_EQ(log_open(&r->l, r->m, r->st.log_id, err, sizeof(err)), 0);
	TV_EQ(log_recover(r->l, LOG_RING_START, 1, log_replay_none, NULL, 1), 0);
}

/* What an honest client does when its credit or its ring runs out. */
static void rclient_sync(struct rclient *r)
{
	uint64_t off, seq, granted;
	int ingested;
	TV_EQ(clog_sync(r->fs, r->c, 0, 16384, &r->credit, &granted, &off, &seq, &ingested), 0);
	if (seq > log_head_seq(r->l))
		log_reclaim(r->l, off, seq);
}

static void rclient_close(struct rclient *r, char *why, size_t len)
{
	log_close(r->l);
	media_close(r->m);
	close(r->st.log_fd);
	close(r->st.state_fd);
	clog_end(r->fs, r->c, why, len);
}

/* Appends one record; 1 if it was a write the daemon must apply. */
static int random_record(struct rclient *r, uint64_t ino, uint64_t other, uint64_t *rng,
                         uint8_t *data, uint64_t *off, size_t *len)
{
	uint64_t k = tv_splitmix(rng) % 12;
	*len = 1 + tv_splitmix(rng) % 8192;
	*off = tv_splitmix(rng) % (SPAN - *len);
	tv_fill(data, *len, tv_splitmix(rng));
	uint16_t type = CLOG_REC_WRITE;
	uint64_t args[LOG_REC_ARGS] = {ino, *off, r->epoch};
	int honest = k < 7;
	if (k == 7)
		args[0] = other; /* an inode it holds no grant for */
	else if (k == 8)
		args[2] = r->epoch + 1 + tv_splitmix(rng) % 1000; /* never given */
	else if (k == 9)
		type = (uint16_t)(2 + tv_splitmix(rng) % 100); /* not a write (never 40 here) */
	else if (k == 10)
		args[1] = CLOG_MAX_END - *len / 2; /* across the largest file */
	if (type == CLOG_REC_WRITE && k == 9)
		type = 41;
	if (k == 11) {
		/* Raw bytes where the next record goes: not a record at all,
		 * until an append writes over them. */
		uint8_t junk[256];
		tv_fill(junk, sizeof(junk), tv_splitmix(rng));
		TV_EQ(media_write(r->m, log_tail_off(r->l), junk, sizeof(junk)), 0);
		return -1;
	}
	uint64_t cost = clog_record_cost(*off, *len);
	if (honest && r->credit < cost)
		rclient_sync(r);
	struct iovec iov = {data, *len};
	struct log_pos pos;
	int rc = log_append(r->l, type, args, &iov, 1, &pos);
	if (rc == -ENOSPC) {
		rclient_sync(r);
		rc = log_append(r->l, type, args, &iov, 1, &pos);
	}
	TV_EQ(rc, 0);
	TV_EQ(log_commit(r->l, pos.seq), 0);
	if (honest)
		r->credit -= cost;
	return honest;
}

static void test_records_of_any_shape(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/granted", O_CREAT | O_RDWR, 0644));
	int ofd = TV_OK(cairn_open(fs, "/other", O_CREAT | O_RDWR, 0644));
	struct stat sb, so;
	TV_OK(cairn_fstat(fs, fd, &sb));
	TV_OK(cairn_fstat(fs, ofd, &so));
	uint8_t *model = calloc(1, SPAN), *got = malloc(SPAN), *data = malloc(8192);
	assert_true(model && got && data);
	uint64_t size = 0, rng = 20261202, forged_rounds = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct rclient r;
		rclient_open(&r, fs, sb.st_ino);
		int forged = 0;
		for (int i = 0; i < RECORDS && !forged; i++) {
			uint64_t off;
			size_t len;
			int honest =
			    random_record(&r, sb.st_ino, so.st_ino, &rng, data, &off, &len);
			if (honest == 0)
				forged = 1; /* nothing from it on may apply */
			else if (honest == 1) {
				memcpy(model + off, data, len);
				if (off + len > size)
					size = off + len;
			}
			if (tv_splitmix(&rng) % 4 == 0)
				TV_EQ(clients_ingest(fs), 0);
		}
		TV_EQ(clients_ingest(fs), 0);
		char why[300] = "";
		rclient_close(&r, why, sizeof(why));
		if (forged != (why[0] != 0))
			fail_msg("round %d: forged %d but the daemon said \"%s\"", round, forged,
			         why);
		forged_rounds += (uint64_t)forged;
		assert_false(fs->failed);
		struct stat now;
		TV_OK(cairn_fstat(fs, fd, &now));
		TV_EQ((uint64_t)now.st_size, size);
		TV_EQ(cairn_pread(fs, fd, got, SPAN, 0), (ssize_t)size);
		if (memcmp(got, model, size))
			fail_msg("round %d: the file is not the honest records' bytes", round);
		TV_OK(cairn_fstat(fs, ofd, &now));
		TV_EQ(now.st_size, 0);
	}
	assert_true(forged_rounds > ROUNDS / 4); /* the forgeries were tried */
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_close(fs, ofd));
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	tv_expect(fs, "/granted", model, size);
	free(model);
	free(got);
	free(data);
	tv_destroy(tv);
}

/* ---- names ------------------------------------------------------------ */

/* One name record in a fresh client's log, as a client could forge it:
 * the daemon must refuse it (why names the reason), apply nothing of it
 * or of the honest record after it, and leave the volume clean. */
struct forgery {
	const char *what;
	uint32_t type;
	int dir_kind;     /* 0: the granted directory, 1: a granted file, 2: 0 */
	int ino_kind;     /* 0: set aside, 1: not set aside, 2: the file /d/f, 3: /d/sub */
	const char *name; /* NULL: a '/' in it */
	uint32_t mode;
	const char *why;
};

static void append_record(struct rclient *r, uint32_t type, const uint64_t args[3],
                          const struct iovec *iov, int n)
{
	uint64_t a[LOG_REC_ARGS] = {args[0], args[1], args[2]};
	struct log_pos pos;
	TV_EQ(log_append(r->l, (uint16_t)type, a, iov, n, &pos), 0);
	TV_EQ(log_commit(r->l, pos.seq), 0);
}

static void forge_one(const struct forgery *fg)
{
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_mkdir(fs, "/d/sub", 0755));
	int fd = TV_OK(cairn_open(fs, "/d/f", O_CREAT | O_RDWR, 0644));
	struct stat d, f, sub;
	TV_OK(cairn_stat(fs, "/d", &d));
	TV_OK(cairn_fstat(fs, fd, &f));
	TV_OK(cairn_stat(fs, "/d/sub", &sub));

	struct rclient r;
	rclient_open(&r, fs, f.st_ino); /* a grant of /d/f */
	uint32_t index;
	uint64_t dir_epoch;
	TV_EQ(clog_grant_dir(fs, r.c, d.st_ino, clients_names_gen(fs), &index, &dir_epoch), 0);
	struct clog_aside aside[64];
	int n = clog_set_aside(fs, r.c, NULL, 0, 0, aside, 64);
	assert_true(n >= 2);
	/* The forged record, then an honest create after it. */
	uint64_t dir = fg->dir_kind == 0 ? d.st_ino : fg->dir_kind == 1 ? f.st_ino : 0;
	uint64_t epoch = fg->dir_kind == 1 ? r.epoch : dir_epoch;
	uint64_t ino = fg->ino_kind == 0   ? aside[0].ino
	               : fg->ino_kind == 1 ? aside[0].ino + 100000
	               : fg->ino_kind == 2 ? f.st_ino
	                                   : sub.st_ino;
	struct clog_create cr = {fg->mode, 0};
	const char *name = fg->name ? fg->name : "a/b";
	struct iovec iov[2] = {{&cr, sizeof(cr)}, {(void *)name, strlen(name)}};
	const uint64_t args[3] = {dir, ino, epoch};
	if (fg->type == CLOG_REC_CREATE)
		append_record(&r, fg->type, args, iov, 2);
	else if (fg->type == CLOG_REC_UNLINK)
		append_record(&r, fg->type, args, iov + 1, 1);
	else if (fg->dir_kind == 0) /* four bytes into the directory, under its grant */
		append_record(&r, fg->type, (const uint64_t[3]){d.st_ino, 0, dir_epoch},
		              &(struct iovec){"abcd", 4}, 1);
	else /* into the number set aside, under its grant, before any create */
		append_record(&r, fg->type, (const uint64_t[3]){aside[0].ino, 0, aside[0].epoch},
		              &(struct iovec){"abcd", 4}, 1);
	struct clog_create ok = {0644, 0};
	struct iovec okv[2] = {{&ok, sizeof(ok)}, {"after", 5}};
	append_record(&r, CLOG_REC_CREATE, (const uint64_t[3]){d.st_ino, aside[1].ino, dir_epoch},
	              okv, 2);

	TV_EQ(clients_ingest(fs), 0);
	char why[300];
	rclient_close(&r, why, sizeof(why));
	if (!strstr(why, fg->why))
		fail_msg("%s: refused as \"%s\", not \"%s\"", fg->what, why, fg->why);
	struct stat st;
	TV_ERR(cairn_stat(fs, "/d/after", &st), ENOENT);
	TV_OK(cairn_stat(fs, "/d/f", &st));
	TV_OK(cairn_stat(fs, "/d/sub", &st));
	if (fg->name && fg->type == CLOG_REC_CREATE) {
		char path[300];
		snprintf(path, sizeof(path), "/d/%s", fg->name);
		if (strcmp(fg->name, "f") && strcmp(fg->name, "sub") && strcmp(fg->name, ".."))
			TV_ERR(cairn_stat(fs, path, &st), ENOENT);
	}
	TV_OK(cairn_close(fs, fd));
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_forged_names(void **state)
{
	(void)state;
	const struct forgery fgs[] = {
	    {"a name with a slash", CLOG_REC_CREATE, 0, 0, NULL, 0644, "a name no file may have"},
	    {"the name \"..\"", CLOG_REC_CREATE, 0, 0, "..", 0644, "a name no file may have"},
	    {"a name that is there", CLOG_REC_CREATE, 0, 0, "f", 0644, "a name that is there"},
	    {"a number not set aside", CLOG_REC_CREATE, 0, 1, "x", 0644,
	     "an inode number not set aside"},
	    {"the number of a file in use", CLOG_REC_CREATE, 0, 2, "x", 0644,
	     "an inode number not set aside"},
	    {"a set-group-ID file", CLOG_REC_CREATE, 0, 0, "x", 02755, "a mode"},
	    {"a file type in the mode", CLOG_REC_CREATE, 0, 0, "x", S_IFDIR | 0755, "a mode"},
	    {"a create under a file's grant", CLOG_REC_CREATE, 1, 0, "x", 0644,
	     "a directory that is not there"},
	    {"a create in directory 0", CLOG_REC_CREATE, 2, 0, "x", 0644,
	     "an inode its grant does not name"},
	    {"an unlink of a directory", CLOG_REC_UNLINK, 0, 3, "sub", 0,
	     "an unlink of a directory"},
	    {"an unlink of another inode", CLOG_REC_UNLINK, 0, 3, "f", 0,
	     "does not name its inode"},
	    {"an unlink of no name", CLOG_REC_UNLINK, 0, 2, "nothing", 0,
	     "does not name its inode"},
	    {"an unlink of a file the client did not make", CLOG_REC_UNLINK, 0, 2, "f", 0,
	     "a file the client does not hold"},
	    {"a write under a directory's grant", CLOG_REC_WRITE, 0, 0, NULL, 0, "no regular file"},
	    {"a write of a number set aside", CLOG_REC_WRITE, 1, 0, NULL, 0, "no regular file"},
	};
	for (size_t i = 0; i < sizeof(fgs) / sizeof(fgs[0]); i++)
		forge_one(&fgs[i]);
}

/* Ingestion in batches holds records reserved in the volume's log whose
 * bytes it copies after letting go of the lock.  When the volume's log
 * fills in the middle of a batch, the digest it must wait for would wait
 * for those copies: the batch is copied first.  800 KiB of a client's
 * 4 KiB records ingested in one go into a 1 MiB log already holding
 * 600 KiB, with the digest in the caller's thread and then in the digest
 * thread (a hang is the failure: the alarm ends it).  With `varied`, the
 * records grow from 512 bytes to 7.5 KiB: the bytes of the records
 * gathered for a batch and not yet applied when it is copied early must
 * stay as they are while the larger records after them are copied in (a
 * wrong byte is the failure). */
static uint64_t record_len(int i, int varied)
{
	return varied ? 512 * (uint64_t)(1 + i / 14) : 4096;
}

static void batch_meets_full_log(int digest_thread, int varied)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 1024 * TV_KiB;
	o.fast_size = 1024 * TV_MiB; /* a credit (1/256 of it) for every record */
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	/* No digest before the log is all but full: the filler stays. */
	struct cairn_mount_opts mo = {.no_digest_thread = !digest_thread, .digest_threshold = 95};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	int fd = TV_OK(cairn_open(fs, "/streamed", O_CREAT | O_RDWR, 0644));
	struct stat sb;
	TV_OK(cairn_fstat(fs, fd, &sb));
	struct rclient r;
	rclient_open(&r, fs, sb.st_ino);
	enum { N = 200, B = 4096 };
	uint8_t *data = malloc((size_t)N * 2 * B); /* records of at most 2 B */
	assert_non_null(data);
	tv_fill(data, (size_t)N * 2 * B, 20261203);
	uint64_t at = 0;
	for (int i = 0; i < N; i++) {
		uint64_t len = record_len(i, varied);
		uint64_t args[LOG_REC_ARGS] = {sb.st_ino, at, r.epoch};
		struct iovec iov = {data + at, len};
		struct log_pos pos;
		if (r.credit < clog_record_cost(at, len))
			fail_msg("the client's credit ran out at record %d", i);
		TV_EQ(log_append(r.l, CLOG_REC_WRITE, args, &iov, 1, &pos), 0);
		TV_EQ(log_commit(r.l, pos.seq), 0);
		r.credit -= clog_record_cost(at, len);
		at += len;
	}
	/* The volume's log is more than half full before the copies come. */
	int filler = TV_OK(cairn_open(fs, "/filler", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 142; i++)
		TV_EQ(cairn_pwrite(fs, filler, data, B, (off_t)i * B), B);
	TV_OK(cairn_close(fs, filler));
	uint64_t waits = fs->stats.log_waits;
	alarm(120);
	assert_true(clients_catch_up(fs) > 0);
	alarm(0);
	if (fs->stats.log_waits == waits)
		fail_msg("the volume's log did not fill while the records were ingested");
	tv_expect_at(fs, fd, 0, data, at);
	char why[300];
	rclient_close(&r, why, sizeof(why));
	TV_EQ(why[0], 0);
	TV_OK(cairn_close(fs, fd));
	free(data);
	tv_destroy(tv);
}

static void test_batch_meets_full_log(void **state)
{
	(void)state;
	batch_meets_full_log(0, 0);
	batch_meets_full_log(1, 0);
	batch_meets_full_log(0, 1);
	batch_meets_full_log(1, 1);
}

/* ---- inode numbers set aside --------------------------------------------- */

/* Clients hold at most 1/256 of the free inode numbers each: five clients
 * that each asked once leave the rest of a volume of 300 inodes to the
 * others (with 64 each they held all of them, and every create through
 * the daemon got ENOSPC); on a volume with room, a client gets its 64. */
static void test_aside_share(void **state)
{
	(void)state;
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.inodes = 300;
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	TV_OK(cairn_mkdir(fs, "/d", 0777));
	struct clog *c[5];
	struct clog_start st[5];
	struct clog_aside aside[64];
	for (int i = 0; i < 5; i++) {
		c[i] = NULL;
		TV_EQ(clog_start(fs, -1, getuid(), getgid(), &c[i], &st[i]), 0);
		int n = clog_set_aside(fs, c[i], NULL, 0, 0, aside, 64);
		if (n > 1)
			fail_msg("client %d of a volume of 300 inodes holds %d set aside", i, n);
	}
	for (int k = 0; k < 280; k++) {
		char path[32];
		snprintf(path, sizeof(path), "/d/f%d", k);
		TV_OK(cairn_close(fs, TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644))));
	}
	char why[300];
	for (int i = 0; i < 5; i++) {
		close(st[i].log_fd);
		close(st[i].state_fd);
		clog_end(fs, c[i], why, sizeof(why));
	}
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);

	o.inodes = 64 * 256 + 64;
	tv = tv_create(&o);
	assert_non_null(tv);
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	struct clog *big = NULL;
	struct clog_start bst;
	TV_EQ(clog_start(fs, -1, getuid(), getgid(), &big, &bst), 0);
	TV_EQ(clog_set_aside(fs, big, NULL, 0, 0, aside, 64), 64);
	close(bst.log_fd);
	close(bst.state_fd);
	clog_end(fs, big, why, sizeof(why));
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kept_log_not_reused),
	    cmocka_unit_test(test_damaged_kept_log_refused),
	    cmocka_unit_test(test_largest_record_ingested),
	    cmocka_unit_test(test_records_of_any_shape),
	    cmocka_unit_test(test_forged_names),
	    cmocka_unit_test(test_batch_meets_full_log),
	    cmocka_unit_test(test_aside_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
