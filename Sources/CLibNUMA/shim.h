#ifndef SPINDLE_CLIBNUMA_SHIM_H
#define SPINDLE_CLIBNUMA_SHIM_H
#include <numa.h>
#include <numaif.h>
#endif
