import os, sys
p = sys.argv[1]; flag = os.O_PATH if sys.argv[2] == 'path' else os.O_RDONLY
for i in range(1000):
    fd = os.open(p, flag); os.close(fd)
