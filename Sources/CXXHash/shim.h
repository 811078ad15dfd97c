#ifndef EDDY_CXXHASH_SHIM_H
#define EDDY_CXXHASH_SHIM_H
#include <xxhash.h>
#endif
