#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
static double now_us(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(int argc,char**argv){
  const char*p=argv[1]; int n=atoi(argv[2]);
  int fd=open(p,O_CREAT|O_RDWR,0644); if(fd<0){perror("open");return 1;} write(fd,"x",1); close(fd);
  struct { const char*name; int flags; } m[] = {{"O_PATH",O_PATH},{"O_RDONLY",O_RDONLY},{"O_RDWR",O_RDWR}};
  for(int k=0;k<3;k++){
    double t0=now_us();
    for(int i=0;i<n;i++){int f=open(p,m[k].flags); if(f<0){perror("open");return 1;} close(f);}
    printf("%-9s open+close: %.2f us\n", m[k].name, (now_us()-t0)/n);
  }
  double t0=now_us(); struct stat st;
  for(int i=0;i<n;i++) stat(p,&st);
  printf("stat: %.2f us\n", (now_us()-t0)/n);
  return 0;
}
