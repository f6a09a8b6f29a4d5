// blascore.c: an LD_PRELOAD shim for tests/test_blascore.sh that makes OpenBLAS
// look as Debian 12's does on a CPU newer than it knows (issue 13): it answers
// openblas_get_corename() with "Prescott", its generic SSE3 fallback, unless
// OPENBLAS_CORETYPE is set, in which case the library's own answer stands.
// kiln must then run itself again with a better OPENBLAS_CORETYPE and say so.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

char *openblas_get_corename(void) {
    char *(*real)(void) = (char *(*)(void))dlsym(RTLD_NEXT, "openblas_get_corename");
    return getenv("OPENBLAS_CORETYPE") || !real ? (real ? real() : "?") : "Prescott";
}
