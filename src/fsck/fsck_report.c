/*
 * fsck_report.c - the report of a check: lists of problems, notes and
 * repairs, the progress bar, and the text and JSON forms `cairn fsck`
 * prints.
 *
 * Owns: the wording of the summary line and the JSON layout.
 * May call: libc only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck/fsck_internal.h"

static const char *const code_names[FC_COUNT] = {
    [FC_NONE] = "none",
    [FC_LOG_SUPER] = "log-refused",
    [FC_EPOCH_SLOT] = "epoch-slot",
    [FC_CKPT_SLOT] = "checkpoint-slot",
    [FC_LOG_HEAD] = "log-head",
    [FC_IBIT_FREE] = "inode-bitmap-free",
    [FC_IBIT_LEAK] = "inode-bitmap-leak",
    [FC_INODE_RESERVED] = "inode-reserved",
    [FC_MODE] = "mode",
    [FC_ROOT] = "root",
    [FC_TREE] = "tree",
    [FC_EXTENT_BAD] = "extent-bad",
    [FC_EXTENT_OUTSIDE] = "extent-outside",
    [FC_EXTENT_PAST_EOF] = "extent-past-eof",
    [FC_SYMLINK_SIZE] = "symlink-size",
    [FC_SPECIAL_TREE] = "special-tree",
    [FC_BLOCKS] = "blocks",
    [FC_ENTRIES] = "entries",
    [FC_DENT_BAD] = "dirent-bad",
    [FC_DENT_KEY] = "dirent-key",
    [FC_DENT_DUP] = "dirent-duplicate",
    [FC_DENT_FREE] = "dirent-free-inode",
    [FC_DENT_TYPE] = "dirent-type",
    [FC_DIR_MULTI] = "dir-multiple-names",
    [FC_NLINK] = "nlink",
    [FC_PARENT] = "parent",
    [FC_ORPHAN_LIST] = "orphan-list",
    [FC_ORPHAN_FLAG] = "orphan-flag",
    [FC_ORPHAN_NAMED] = "orphan-named",
    [FC_UNREACHABLE] = "unreachable",
    [FC_BLOCK_META_FREE] = "block-metadata-free",
    [FC_BLOCK_LEAK] = "block-leak",
    [FC_BLOCK_FREE_USED] = "block-free-but-claimed",
    [FC_BLOCK_DUP] = "block-duplicate",
    [FC_IO] = "io",
    [FC_DATA_CHECKSUM] = "data-checksum",
    [FC_LOG_SUPER_COPY] = "log-superblock-copy",
    [FC_FAST_SUPER_COPY] = "fast-superblock-copy",
    [FC_LOG_LOST] = "log-records-lost",
    [FC_CLIENT_LOG] = "client-log",
    [FC_CLIENT_LOG_LOST] = "client-log-records-lost",
};

const char *fsck_code_name(int code)
{
	return code >= 0 && code < FC_COUNT && code_names[code] ? code_names[code] : "unknown";
}

/* ---- lists ---------------------------------------------------------------- */

struct fsck_item *fsck_list_add(struct fsck_list *l, int code, const char *fmt, va_list ap)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct fsck_item *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = ncap;
	}
	struct fsck_item *it = &l->v[l->n++];
	memset(it, 0, sizeof(*it));
	it->code = code;
	vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
	return it;
}

struct fsck_item *fsck_problem(struct fsck_ctx *c, int code, const char *fmt, ...)
{
	/* A rescan only gathers owners: its problems were reported already.
	 * Out of memory, the problem is dropped rather than the check. */
	static __thread struct fsck_item scratch;
	if (c->rescan) {
		memset(&scratch, 0, sizeof(scratch));
		return &scratch;
	}
	va_list ap;
	va_start(ap, fmt);
	struct fsck_item *it = fsck_list_add(c->out, code, fmt, ap);
	va_end(ap);
	if (!it) {
		memset(&scratch, 0, sizeof(scratch));
		return &scratch;
	}
	return it;
}

struct fsck_item *fsck_list_addf(struct fsck_list *l, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct fsck_item *it = fsck_list_add(l, code, fmt, ap);
	va_end(ap);
	return it;
}

void fsck_note(struct fsck_report *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fsck_list_add(&r->notes, FC_NONE, fmt, ap);
	va_end(ap);
}

void fsck_list_free(struct fsck_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

size_t fsck_count(const struct fsck_list *l, int severity)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += l->v[i].severity == severity;
	return n;
}

void fsck_report_free(struct fsck_report *r)
{
	fsck_list_free(&r->found);
	fsck_list_free(&r->repairs);
	fsck_list_free(&r->remaining);
	fsck_list_free(&r->notes);
}

void fsck_quote(char *out, size_t outlen, const char *name, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o < outlen ? o : outlen - 1] = 0;
}

/* ---- progress ------------------------------------------------------------- */

/* Redrawn only when the percentage changes, so a million inodes cost a
 * hundred writes to the terminal. */
void fsck_progress(struct fsck_ctx *c, const char *label, uint64_t done, uint64_t total)
{
	if (!c->o->progress || c->rescan || total == 0)
		return;
	int pct = (int)(done * 100 / total);
	if (label == c->progress_label && pct == c->progress_pct)
		return;
	c->progress_label = label;
	c->progress_pct = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(40 - fill));
	bar[40] = 0;
	fprintf(stderr, "\rfsck: %-12s [%s] %3d%%", label, bar, pct);
	fflush(stderr);
}

void fsck_progress_end(struct fsck_ctx *c)
{
	if (c->o->progress && c->progress_label) {
		fprintf(stderr, "\r%72s\r", "");
		fflush(stderr);
	}
	c->progress_label = NULL;
	c->progress_pct = -1;
}

/* ---- text ----------------------------------------------------------------- */

static void print_items(FILE *f, const struct fsck_list *l, const char *prefix)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct fsck_item *it = &l->v[i];
		fprintf(f, "fsck: %s%s%s\n", prefix,
		        it->severity == FSCK_WARNING ? "warning: " : "", it->msg);
	}
}

static void plural(char *out, size_t len, uint64_t n, const char *one, const char *many)
{
	snprintf(out, len, "%llu %s", (unsigned long long)n, n == 1 ? one : many);
}

static void summary_state(char *out, size_t len, const struct fsck_report *r)
{
	char p[64];
	switch (r->result) {
	case FSCK_CLEAN:
		snprintf(out, len, "clean");
		break;
	case FSCK_REPAIRED:
		plural(p, sizeof(p), r->errors, "problem", "problems");
		snprintf(out, len, "%s, repaired: clean", p);
		break;
	default:
		if (r->repairs.n || r->remaining.n) {
			plural(p, sizeof(p), r->errors_left, "problem", "problems");
			snprintf(out, len, "%llu found, %s left after repair",
			         (unsigned long long)r->errors, p);
		} else {
			plural(p, sizeof(p), r->errors, "problem", "problems");
			snprintf(out, len, "%s", p);
		}
	}
}

void fsck_print_text(FILE *f, const char *volume, const struct fsck_report *r)
{
	if (r->result == FSCK_REFUSED) {
		print_items(f, &r->found, "");
		fprintf(f, "fsck: %s: cannot check: %s\n", volume, r->refused);
		return;
	}
	print_items(f, &r->notes, "note: ");
	print_items(f, &r->found, "");
	print_items(f, &r->repairs, "repaired: ");
	if (r->repairs.n || r->errors_left)
		print_items(f, &r->remaining, "left: ");
	for (unsigned t = 0; r->tier_count > 1 && t < r->tier_count; t++)
		fprintf(f, "fsck: %s: tier %s: %llu of %llu data blocks in use\n", volume,
		        r->tiers[t].name, (unsigned long long)r->tiers[t].blocks_in_use,
		        (unsigned long long)r->tiers[t].data_blocks);
	char state[160];
	summary_state(state, sizeof(state), r);
	fprintf(f, "fsck: %s: %llu inodes, %llu directories, %llu blocks in use: %s\n", volume,
	        (unsigned long long)r->inodes, (unsigned long long)r->directories,
	        (unsigned long long)r->blocks_in_use, state);
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_items(FILE *f, const char *key, const struct fsck_list *l, int with_code)
{
	fprintf(f, ", \"%s\": [", key);
	for (size_t i = 0; i < l->n; i++) {
		const struct fsck_item *it = &l->v[i];
		fputs(i ? ", " : "", f);
		if (!with_code) {
			json_str(f, it->msg);
			continue;
		}
		fprintf(
		    f, "{\"code\": \"%s\", \"severity\": \"%s\", \"fixable\": %s, \"message\": ",
		    fsck_code_name(it->code), it->severity == FSCK_WARNING ? "warning" : "error",
		    it->fixable ? "true" : "false");
		json_str(f, it->msg);
		fputc('}', f);
	}
	fputc(']', f);
}

void fsck_print_json(FILE *f, const char *volume, const struct fsck_report *r)
{
	static const char *names[] = {"clean", "problems", "usage", "repaired", "refused"};
	fputs("{\"volume\": ", f);
	json_str(f, volume);
	fprintf(f, ", \"result\": \"%s\", \"exit\": %d",
	        r->result >= 0 && r->result <= 4 ? names[r->result] : "?", r->result);
	if (r->result == FSCK_REFUSED) {
		fputs(", \"refused\": ", f);
		json_str(f, r->refused);
	}
	fprintf(
	    f,
	    ", \"inodes\": %llu, \"directories\": %llu, \"files\": %llu, \"symlinks\": %llu, "
	    "\"others\": %llu, \"orphans\": %llu, \"blocks_in_use\": %llu, "
	    "\"undigested_records\": %llu, \"log_head_offset\": %llu, \"log_end_offset\": %llu, "
	    "\"recovery_pending\": %s, \"errors\": %llu, \"warnings\": %llu, \"errors_left\": %llu",
	    (unsigned long long)r->inodes, (unsigned long long)r->directories,
	    (unsigned long long)r->files, (unsigned long long)r->symlinks,
	    (unsigned long long)r->others, (unsigned long long)r->orphans,
	    (unsigned long long)r->blocks_in_use, (unsigned long long)r->undigested_records,
	    (unsigned long long)r->log_head_off, (unsigned long long)r->log_end_off,
	    r->recovery_pending ? "true" : "false", (unsigned long long)r->errors,
	    (unsigned long long)r->warnings, (unsigned long long)r->errors_left);
	fputs(", \"tiers\": [", f);
	for (unsigned t = 0; t < r->tier_count; t++) {
		fputs(t ? ", {\"name\": " : "{\"name\": ", f);
		json_str(f, r->tiers[t].name);
		fprintf(f, ", \"data_blocks\": %llu, \"blocks_in_use\": %llu}",
		        (unsigned long long)r->tiers[t].data_blocks,
		        (unsigned long long)r->tiers[t].blocks_in_use);
	}
	fputc(']', f);
	json_items(f, "problems", &r->found, 1);
	json_items(f, "repairs", &r->repairs, 0);
	json_items(f, "remaining", &r->remaining, 1);
	json_items(f, "notes", &r->notes, 0);
	fputs("}\n", f);
}
