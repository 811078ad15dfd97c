#ifndef EDDY_CHIREDIS_SHIM_H
#define EDDY_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
