#include <cairn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc,char**argv){
  cairn_fs*fs=cairn_attach(argv[1]); if(!fs){fprintf(stderr,"%s\n",cairn_last_error());return 1;}
  int n=atoi(argv[2]), burst=atoi(argv[3]); long gap=atol(argv[4]);
  int fd=cairn_open(fs,"/trickle",O_CREAT|O_TRUNC|O_WRONLY|O_APPEND,0644);
  char buf[4096]; memset(buf,'t',4096);
  for(int i=0;i<n;i++){ cairn_write(fs,fd,buf,4096); if((i+1)%burst==0) nanosleep(&(struct timespec){0,gap},NULL); }
  cairn_close(fs,fd); cairn_unlink(fs,"/trickle"); cairn_unmount(fs); return 0;
}
