#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
int main(){sigset_t all,old;sigfillset(&all);struct timespec a,b;int n=200000;
clock_gettime(CLOCK_MONOTONIC,&a);for(int i=0;i<n;i++){pthread_sigmask(SIG_BLOCK,&all,&old);pthread_sigmask(SIG_SETMASK,&old,NULL);}
clock_gettime(CLOCK_MONOTONIC,&b);printf("sigmask pair %.3f us\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/n/1000.0);
clock_gettime(CLOCK_MONOTONIC,&a);for(int i=0;i<n;i++){lseek(0,0,SEEK_CUR);}
clock_gettime(CLOCK_MONOTONIC,&b);printf("lseek %.3f us\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/n/1000.0);}
