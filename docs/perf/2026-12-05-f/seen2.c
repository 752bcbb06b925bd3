#include <cairn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now_us(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const char*mnt=argv[1]; int n=atoi(argv[2]);
  cairn_fs*fs=cairn_attach(mnt); if(!fs){fprintf(stderr,"%s\n",cairn_last_error());return 1;}
  char path[4096]; snprintf(path,sizeof path,"%s/s2",mnt);
  int cfd=cairn_open(fs,"/s2",O_CREAT|O_TRUNC|O_WRONLY,0644);
  char buf[4096],got[4096]; memset(buf,0,4096); cairn_pwrite(fs,cfd,buf,4096,0);
  int kfd=open(path,O_RDONLY);
  double *w=malloc(n*sizeof(double)),*r=malloc(n*sizeof(double));
  for(int mode=0;mode<2;mode++){
  for(int i=0;i<n;i++){memset(buf,'a'+i%26,4096);double t0=now_us();cairn_pwrite(fs,cfd,buf,4096,0);double t1=now_us(); if(mode) pread(kfd,got,4096,0); double t2=now_us(); w[i]=t1-t0;r[i]=t2-t1;}
  qsort(w,n,sizeof(double),cmp);qsort(r,n,sizeof(double),cmp);
  printf("%s: pwrite p50 %.1f us, pread p50 %.1f us\n", mode?"write+read":"write only", w[n/2], r[n/2]);
  }
  close(kfd); cairn_close(fs,cfd); cairn_unlink(fs,"/s2"); cairn_unmount(fs); return 0;
}
