/* Two threads appending 4 KiB records through the native API, each to
 * its own file: on one volume (shared=1: apart 1|2 N 1 VOL) or each on a
 * volume of its own (shared=0: apart 2 N 0 VOL_A VOL_B).  Build:
 *   gcc -O2 -Iinclude apart.c -o apart -Lbuild -lcairn -lpthread */
#define _GNU_SOURCE
#include <cairn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
struct w { cairn_fs *fs; int n; int id; double from, to; };
static double now_us(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static void *run(void *a){ struct w *w=a; char name[64]; snprintf(name,64,"/f%d",w->id);
 int fd=cairn_open(w->fs,name,O_CREAT|O_TRUNC|O_WRONLY|O_APPEND,0644); char buf[4096]; memset(buf,'a',4096);
 for(int i=0;i<1000+w->n;i++){ if(i==1000) w->from=now_us(); if(cairn_write(w->fs,fd,buf,4096)!=4096){perror("w");exit(1);} }
 w->to=now_us(); cairn_close(w->fs,fd); return NULL;}
int main(int c,char**v){ int t=atoi(v[1]); int n=atoi(v[2]); int shared=atoi(v[3]); struct w w[8]; pthread_t th[8];
 cairn_fs *one=NULL; if(shared) one=cairn_mount(v[4],NULL);
 for(int i=0;i<t;i++){ w[i].fs= shared?one:cairn_mount(v[4+i],NULL); if(!w[i].fs){fprintf(stderr,"%s\n",cairn_last_error());return 1;} w[i].n=n;w[i].id=i;}
 for(int i=0;i<t;i++) pthread_create(&th[i],NULL,run,&w[i]);
 double f=1e30,to=0; for(int i=0;i<t;i++){pthread_join(th[i],NULL); if(w[i].from<f)f=w[i].from; if(w[i].to>to)to=w[i].to;}
 printf("t=%d shared=%d ops_s=%.0f\n",t,shared,(double)t*n/((to-f)/1e6)); return 0;}
