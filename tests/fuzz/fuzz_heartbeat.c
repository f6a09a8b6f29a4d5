// fuzz_heartbeat: RUN/heartbeat (rundir_parse_heartbeat), read by the supervisor.
#include "core/rundir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnHeartbeat hb;
    rundir_parse_heartbeat((const char *)data, size, &hb);
    return 0;
}
