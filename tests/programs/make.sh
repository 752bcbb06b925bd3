#!/usr/bin/env bash
# make.sh MNT - make and cc on the file system at MNT: a small C project
# (4 sources, 2 headers, a static library, a Makefile with -MMD header
# dependencies) built with make -j2; the program runs and prints the
# expected result; nothing is rebuilt when nothing changed; after touching
# one source only that object is rebuilt (and the program relinked); after
# touching a header only its includers; make clean removes every product.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v make >/dev/null || die "make is not installed"
command -v cc >/dev/null || die "cc is not installed"
setup_workdir "${1:-}"
T0=$(now)
P=$WORK/proj
mkdir -p "$P/src" "$P/include"

cat >"$P/include/vec.h" <<'C'
#ifndef VEC_H
#define VEC_H
#include <stddef.h>
struct vec { long *v; size_t n, cap; };
void vec_push(struct vec *a, long x);
long vec_sum(const struct vec *a);
void vec_free(struct vec *a);
#endif
C
cat >"$P/include/prime.h" <<'C'
#ifndef PRIME_H
#define PRIME_H
#include "vec.h"
int is_prime(long n);
void primes_below(struct vec *out, long limit);
#endif
C
cat >"$P/src/vec.c" <<'C'
#include <stdlib.h>
#include "vec.h"
void vec_push(struct vec *a, long x)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 16;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		if (!a->v)
			abort();
	}
	a->v[a->n++] = x;
}
long vec_sum(const struct vec *a)
{
	long s = 0;
	for (size_t i = 0; i < a->n; i++)
		s += a->v[i];
	return s;
}
void vec_free(struct vec *a)
{
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}
C
cat >"$P/src/prime.c" <<'C'
#include "prime.h"
int is_prime(long n)
{
	if (n < 2)
		return 0;
	for (long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}
void primes_below(struct vec *out, long limit)
{
	for (long n = 2; n < limit; n++)
		if (is_prime(n))
			vec_push(out, n);
}
C
cat >"$P/src/report.c" <<'C'
#include <stdio.h>
#include "vec.h"
void report(const struct vec *a)
{
	printf("count=%zu sum=%ld last=%ld\n", a->n, vec_sum(a), a->n ? a->v[a->n - 1] : 0);
}
C
cat >"$P/src/main.c" <<'C'
#include <stdlib.h>
#include "prime.h"
void report(const struct vec *a);
int main(int argc, char **argv)
{
	struct vec a = {0};
	primes_below(&a, argc > 1 ? atol(argv[1]) : 100000);
	report(&a);
	vec_free(&a);
	return 0;
}
C
cat >"$P/Makefile" <<'MK'
CC ?= cc
CFLAGS = -O2 -Wall -Wextra -Werror -Iinclude -MMD -MP
LIB = build/libprime.a
OBJS = build/main.o
LIBOBJS = build/vec.o build/prime.o build/report.o

all: bin/primes

bin/primes: $(OBJS) $(LIB) | bin
	$(CC) -o $@ $(OBJS) $(LIB)

$(LIB): $(LIBOBJS)
	rm -f $@
	ar rcs $@ $^

build/%.o: src/%.c | build
	$(CC) $(CFLAGS) -c -o $@ $<

build bin:
	mkdir -p $@

clean:
	rm -rf build bin

.PHONY: all clean
-include $(LIBOBJS:.o=.d) $(OBJS:.o=.d)
MK

# compiled: the objects that a make run (its output in $1) compiled.
compiled() {
	grep -o -- '-c -o build/[a-z]*\.o' "$1" | sed 's/.*build\///' | sort | tr '\n' ' ' | sed 's/ $//'
}
EXPECT="count=9592 sum=454396537 last=99991"

t=$(now)
make -C "$P" -j2 >"$WORK/make1.out" 2>&1 || die "make -j2 failed: $(cat "$WORK/make1.out")"
[ "$(compiled "$WORK/make1.out")" = "main.o prime.o report.o vec.o" ] ||
	die "the first make compiled '$(compiled "$WORK/make1.out")', not all 4 sources: $(cat "$WORK/make1.out")"
out=$("$P/bin/primes") || die "bin/primes (built on the mount) failed"
[ "$out" = "$EXPECT" ] || die "bin/primes printed '$out', expected '$EXPECT'"
note "make -j2 (4 objects, a library, a program), run: $(since "$t")s"

t=$(now)
make -C "$P" -q || die "make -q says the fresh build is out of date"
make -C "$P" -j2 >"$WORK/make2.out" 2>&1 || die "the second make failed: $(cat "$WORK/make2.out")"
[ -z "$(compiled "$WORK/make2.out")" ] || die "make with nothing changed compiled $(compiled "$WORK/make2.out")"
grep -q "Nothing to be done" "$WORK/make2.out" || die "make with nothing changed did something: $(cat "$WORK/make2.out")"
note "make with nothing changed does nothing: $(since "$t")s"

# Timestamps: wait a second so that the touch is newer even with a coarse
# clock; make must then rebuild exactly what depends on the touched file.
t=$(now)
sleep 1.1
touch "$P/src/report.c"
make -C "$P" -q && die "make -q says the build is up to date after touch src/report.c"
make -C "$P" -j2 >"$WORK/make3.out" 2>&1 || die "make after touch failed: $(cat "$WORK/make3.out")"
[ "$(compiled "$WORK/make3.out")" = "report.o" ] ||
	die "after touch src/report.c, make compiled '$(compiled "$WORK/make3.out")', not just report.o: $(cat "$WORK/make3.out")"
grep -q 'ar rcs' "$WORK/make3.out" || die "after touch src/report.c, make did not rebuild the library"
grep -q -- '-o bin/primes' "$WORK/make3.out" || die "after touch src/report.c, make did not relink"
note "touch src/report.c: make rebuilt only report.o (and relinked): $(since "$t")s"

t=$(now)
sleep 1.1
touch "$P/include/prime.h"
make -C "$P" -j2 >"$WORK/make4.out" 2>&1 || die "make after touch of a header failed: $(cat "$WORK/make4.out")"
[ "$(compiled "$WORK/make4.out")" = "main.o prime.o" ] ||
	die "after touch include/prime.h, make compiled '$(compiled "$WORK/make4.out")', not main.o prime.o: $(cat "$WORK/make4.out")"
out=$("$P/bin/primes" 1000) || die "bin/primes 1000 failed"
[ "$out" = "count=168 sum=76127 last=997" ] || die "bin/primes 1000 printed '$out'"
note "touch include/prime.h: make rebuilt only main.o prime.o: $(since "$t")s"

# A change of content: the program changes with it.
t=$(now)
sleep 1.1
sed -i 's/count=/primes=/' "$P/src/report.c"
make -C "$P" -j2 >"$WORK/make5.out" 2>&1 || die "make after an edit failed: $(cat "$WORK/make5.out")"
out=$("$P/bin/primes" 1000)
[ "$out" = "primes=168 sum=76127 last=997" ] || die "after editing src/report.c, bin/primes printed '$out'"
note "edit src/report.c: rebuilt, the new program runs: $(since "$t")s"

t=$(now)
make -C "$P" clean >"$WORK/clean.out" 2>&1 || die "make clean failed: $(cat "$WORK/clean.out")"
left=$(cd "$P" && find . -name '*.o' -o -name '*.d' -o -name '*.a' -o -name primes -o -name build -o -name bin)
[ -z "$left" ] || die "make clean left: $left"
n=$(cd "$P" && find . -type f | wc -l)
[ "$n" -eq 7 ] || die "after make clean the project has $n files, not its 7 sources: $(cd "$P" && find . -type f)"
note "make clean: $(since "$t")s"

finish_workdir
note "passed in $(since "$T0")s"
