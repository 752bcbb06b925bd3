#include <stdio.h>
#include <time.h>
#include <stdlib.h>
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec*1e6+t.tv_nsec/1e3;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(void){ double v[2000]; for(int i=0;i<2000;i++){double a=now(); nanosleep(&(struct timespec){0,100000},NULL); v[i]=now()-a;} qsort(v,2000,sizeof v[0],cmp); printf("nanosleep(100 us): p10 %.1f p50 %.1f p90 %.1f us\n", v[200], v[1000], v[1800]); return 0;}
