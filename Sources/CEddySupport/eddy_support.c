#include "eddy_support.h"

#if defined(__GLIBC__)
#include <malloc.h>
int eddy_fix_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#else
int eddy_fix_mmap_threshold(int bytes) { (void)bytes; return 0; }
#endif
