/*
 * fuzz_profile.c — libFuzzer target for the profile loader.
 *
 * Properties checked on every input, beyond "no crash, no sanitizer report":
 *   - a refusal always comes with a one-line message naming the rule and the fix;
 *   - an accepted v1.0 file with no feature bits is exactly what the encoder writes for the
 *     configuration and host facts it decodes to (so the loader accepts nothing the encoder
 *     would not have produced: one canonical encoding);
 *   - the memory entry point agrees with the parse entry point.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/spindle_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sp_config cfg;
    static sp_host_facts host;
    sp_profile_info info;
    char msg[SP_PROFILE_MSG_MAX];
    int rc = sp_profile_parse(data, size, "fuzz", &cfg, &host, &info, msg, sizeof msg);
    if (rc != 0) {
        if (!strstr(msg, "rule ") || !strstr(msg, "fix: ") || strchr(msg, '\n')) {
            fprintf(stderr, "refusal without a one-line rule and fix: %s\n", msg);
            abort();
        }
    } else if (info.version_minor == 0 && info.section_count == 3 && !info.incompat && !info.ro_compat &&
               !info.compat) {
        static uint8_t again[1 << 16];
        char emsg[SP_PROFILE_MSG_MAX];
        long n = sp_profile_encode(&cfg, &host, "fuzz", again, sizeof again, emsg, sizeof emsg);
        if (n != (long)size || memcmp(again, data, size) != 0) {
            fprintf(stderr, "accepted file is not the canonical encoding (%ld vs %zu bytes): %s\n", n, size,
                    n < 0 ? emsg : "bytes differ");
            abort();
        }
    }
    int err = 0;
    sp_profile *p = sp_profile_from_memory(data, size, "fuzz", &err, msg, sizeof msg);
    if ((p != NULL) != (rc == 0) || (p == NULL && err != rc)) {
        fprintf(stderr, "sp_profile_from_memory disagrees with sp_profile_parse (%d vs %d)\n", err, rc);
        abort();
    }
    sp_profile_close(p);
    return 0;
}
