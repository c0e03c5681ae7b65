#ifndef SPINDLE_CLIBURING_SHIM_H
#define SPINDLE_CLIBURING_SHIM_H
#include <liburing.h>
#endif
