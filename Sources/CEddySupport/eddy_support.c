#include "eddy_support.h"
