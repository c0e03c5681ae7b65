/*
 * profile.c — the profile loader: every byte of a version 1 profile is checked before any
 * value is used, so nothing wrong in a file can reach a running engine.
 *
 * Order of checks (each refusal names file, section, key, value, rule and fix):
 *   size of every header field → magic → version → lengths → feature bits → CRC32C →
 *   section table (bounds, alignment, order, overlap, zeroed gaps) → each section's fields →
 *   cross-field and cross-section rules → sp_config_validate (the engine's own ranges).
 * Reads go through sp_pf_u* on offsets already proven in bounds; no struct is overlaid on the
 * mapping, so alignment and padding of the file never matter to the compiler.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile.h"
#include "topology.h"

/* sp_config_validate lives in config.c (the engine core); weak so the fuzzer can build the loader
 * alone. When it is linked, the loader defers to it as the last word on ranges. */
#pragma weak sp_config_validate

int sp_pf_fail(char *msg, size_t len, int code, const char *name, const char *section, const char *key,
               const char *value, const char *rule, const char *fix) {
    if (msg && len) snprintf(msg, len, "%s: %s %s = %s: rule %s; fix: %s", name, section, key, value, rule, fix);
    return code;
}

int sp_pf_failf(sp_pf_ctx *c, int code, const char *section, const char *key, const char *rule, const char *fix,
                const char *vfmt, ...) {
    char value[160];
    va_list ap;
    va_start(ap, vfmt);
    vsnprintf(value, sizeof value, vfmt, ap);
    va_end(ap);
    return sp_pf_fail(c->msg, c->len, code, c->name, section, key, value, rule, fix);
}

#define fail sp_pf_failf

const char *sp_profile_strerror(int code) {
    switch (code) {
    case SP_PROFILE_OK: return "ok";
    case SP_PROFILE_EIO: return "cannot read the profile";
    case SP_PROFILE_EPERM: return "profile writable by other users";
    case SP_PROFILE_ETRUNCATED: return "profile truncated";
    case SP_PROFILE_EMAGIC: return "not a Spindle profile";
    case SP_PROFILE_EVERSION: return "unsupported profile version";
    case SP_PROFILE_EFEATURE: return "unknown incompatible feature";
    case SP_PROFILE_ELENGTH: return "inconsistent length";
    case SP_PROFILE_ECRC: return "bad CRC32C";
    case SP_PROFILE_ESECTION: return "bad section table";
    case SP_PROFILE_ERANGE: return "field out of range";
    case SP_PROFILE_ERULE: return "cross-field rule broken";
    case SP_PROFILE_EHOST: return "profile does not fit this host";
    case SP_PROFILE_EDRIFT: return "host changed since detect";
    case SP_PROFILE_ENOMEM: return "out of memory";
    default: return "unknown profile error";
    }
}


/* ---- header -------------------------------------------------------------------------------- */

static int need(sp_pf_ctx *c, uint64_t end, const char *field) {
    if (c->size >= end) return 0;
    char rule[96];
    snprintf(rule, sizeof rule, "the header needs %" PRIu64 " bytes up to this field", end);
    return fail(c, SP_PROFILE_ETRUNCATED, "header", field, rule, "the file is cut short: " SP_PF_RECOMPILE,
                "(missing; file is %" PRIu64 " bytes)", c->size);
}

static int check_header(sp_pf_ctx *c, sp_profile_info *info) {
    const uint8_t *b = c->b;
    int rc;
    if ((rc = need(c, 8, "magic"))) return rc;
    if (memcmp(b, SP_PF_MAGIC, 8) != 0) {
        char shown[40];
        size_t o = 0;
        for (int i = 0; i < 8; i++) o += (size_t)snprintf(shown + o, sizeof shown - o, "%02x", b[i]);
        return fail(c, SP_PROFILE_EMAGIC, "header", "magic", "the file starts with \"SPNDLPRF\"",
                    "pass a compiled profile (spindle profile compile IN.toml -o OUT.spindle)", "0x%s", shown);
    }
    if ((rc = need(c, 10, "version_major"))) return rc;
    uint16_t major = sp_pf_u16(b + SP_PF_H_MAJOR);
    if (major != SP_PROFILE_VERSION_MAJOR)
        return fail(c, SP_PROFILE_EVERSION, "header", "version_major", "this loader reads major version 1",
                    "use a spindle that reads this version, or recompile with this one", "%u", major);
    if ((rc = need(c, 12, "version_minor"))) return rc;
    c->minor = sp_pf_u16(b + SP_PF_H_MINOR);
    if ((rc = need(c, 16, "header_length"))) return rc;
    uint32_t hlen = sp_pf_u32(b + SP_PF_H_HEADER_LEN);
    if (hlen < SP_PF_HEADER_LEN || hlen % 8 || (c->minor == 0 && hlen != SP_PF_HEADER_LEN))
        return fail(c, SP_PROFILE_ELENGTH, "header", "header_length",
                    "64 in v1.0, a multiple of 8 and at least 64 in later minors", SP_PF_RECOMPILE, "%u", hlen);
    if ((rc = need(c, 24, "total_length"))) return rc;
    uint64_t total = sp_pf_u64(b + SP_PF_H_TOTAL_LEN); /* compared with the size once the header is whole */
    if ((rc = need(c, 32, "incompat"))) return rc;
    uint64_t incompat = sp_pf_u64(b + SP_PF_H_INCOMPAT);
    if (incompat & ~SP_PF_INCOMPAT_KNOWN)
        return fail(c, SP_PROFILE_EFEATURE, "header", "incompat",
                    "every incompatible feature bit is known to this loader",
                    "use a spindle that knows these features, or recompile the profile with this one",
                    "0x%016" PRIx64 " (unknown bits 0x%" PRIx64 ")", incompat, (uint64_t)(incompat & ~SP_PF_INCOMPAT_KNOWN));
    if ((rc = need(c, 40, "ro_compat"))) return rc;
    uint64_t ro = sp_pf_u64(b + SP_PF_H_RO_COMPAT);
    if ((rc = need(c, 48, "compat"))) return rc;
    uint64_t compat = sp_pf_u64(b + SP_PF_H_COMPAT);
    if ((rc = need(c, 52, "section_count"))) return rc;
    uint32_t count = sp_pf_u32(b + SP_PF_H_SECTION_COUNT);
    if (count < 3 || count > SP_PF_MAX_SECTIONS)
        return fail(c, SP_PROFILE_ESECTION, "header", "section_count", "3...16 (ENGINE, LANES, HOST, then newer ones)",
                    SP_PF_RECOMPILE, "%u", count);
    if ((rc = need(c, 64, "reserved"))) return rc;
    if (sp_pf_u32(b + SP_PF_H_RESERVED0) || sp_pf_u64(b + SP_PF_H_RESERVED1))
        return fail(c, SP_PROFILE_ERANGE, "header", "reserved", "zero", SP_PF_RECOMPILE, "0x%08x%016" PRIx64,
                    sp_pf_u32(b + SP_PF_H_RESERVED0), sp_pf_u64(b + SP_PF_H_RESERVED1));
    if (total != c->size)
        return fail(c, SP_PROFILE_ELENGTH, "header", "total_length", "equals the file size",
                    c->size < total ? "the file is cut short: " SP_PF_RECOMPILE
                                    : "the file has trailing bytes: " SP_PF_RECOMPILE,
                    "%" PRIu64 " (file is %" PRIu64 " bytes)", total, c->size);
    uint64_t table_end = (uint64_t)hlen + (uint64_t)count * SP_PF_SECTION_ENTRY;
    if (table_end + SP_PF_TRAILER > total)
        return fail(c, SP_PROFILE_ETRUNCATED, "header", "section table",
                    "header, section table and CRC trailer fit in total_length", SP_PF_RECOMPILE,
                    "%u entries ending at byte %" PRIu64 " (file is %" PRIu64 " bytes)", count, table_end, total);
    if (total % 8)
        return fail(c, SP_PROFILE_ELENGTH, "header", "total_length", "a multiple of 8", SP_PF_RECOMPILE, "%" PRIu64, total);
    if (info) {
        info->version_major = major;
        info->version_minor = c->minor;
        info->section_count = count;
        info->total_length = total;
        info->incompat = incompat;
        info->ro_compat = ro;
        info->compat = compat;
        info->read_only = (ro & ~SP_PF_RO_COMPAT_KNOWN) != 0;
    }
    return 0;
}

static int check_crc(sp_pf_ctx *c, sp_profile_info *info) {
    uint64_t at = c->size - SP_PF_TRAILER;
    uint32_t stored = sp_pf_u32(c->b + at), computed = sp_crc32c(0, c->b, at);
    if (stored != computed)
        return fail(c, SP_PROFILE_ECRC, "trailer", "crc32c", "CRC32C of every byte before the trailer",
                    "the file is damaged or was edited by hand: " SP_PF_RECOMPILE, "0x%08x (computed 0x%08x)", stored,
                    computed);
    if (sp_pf_u32(c->b + at + 4))
        return fail(c, SP_PROFILE_ERANGE, "trailer", "reserved", "zero", SP_PF_RECOMPILE, "0x%08x",
                    sp_pf_u32(c->b + at + 4));
    if (info) info->crc = stored;
    return 0;
}

/* ---- section table ------------------------------------------------------------------------- */

static void tag_text(uint32_t tag, char out[16]) {
    char t[5];
    for (int i = 0; i < 4; i++) {
        unsigned char ch = (unsigned char)(tag >> (8 * i));
        t[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    t[4] = 0;
    snprintf(out, 16, "\"%s\"", t);
}

static int check_sections(sp_pf_ctx *c, sp_pf_section known[3]) {
    static const uint32_t order[3] = {SP_PF_TAG_ENGINE, SP_PF_TAG_LANES, SP_PF_TAG_HOST};
    uint32_t hlen = sp_pf_u32(c->b + SP_PF_H_HEADER_LEN), count = sp_pf_u32(c->b + SP_PF_H_SECTION_COUNT);
    uint64_t prev_end = (uint64_t)hlen + (uint64_t)count * SP_PF_SECTION_ENTRY, data_end = c->size - SP_PF_TRAILER;
    /* Bytes a newer minor appended to the header are its own business; the gap after the table is ours. */
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = c->b + hlen + (uint64_t)i * SP_PF_SECTION_ENTRY;
        uint32_t tag = sp_pf_u32(e + SP_PF_S_TAG), flags = sp_pf_u32(e + SP_PF_S_FLAGS);
        uint32_t off = sp_pf_u32(e + SP_PF_S_OFFSET), len = sp_pf_u32(e + SP_PF_S_LENGTH);
        char key[48], tt[16];
        snprintf(key, sizeof key, "sections[%u]", i);
        tag_text(tag, tt);
        if (i < 3 && tag != order[i])
            return fail(c, SP_PROFILE_ESECTION, "section table", key, "ENGINE, LANES, HOST come first, in this order",
                        SP_PF_RECOMPILE, "tag %s (expected \"%.4s\")", tt, (const char *)&order[i]);
        if (i >= 3)
            for (int k = 0; k < 3; k++)
                if (tag == order[k])
                    return fail(c, SP_PROFILE_ESECTION, "section table", key, "each section appears once", SP_PF_RECOMPILE,
                                "tag %s (again)", tt);
        if (flags) return fail(c, SP_PROFILE_ERANGE, "section table", key, "flags are zero", SP_PF_RECOMPILE, "flags 0x%x", flags);
        if (off % 8 || len % 8)
            return fail(c, SP_PROFILE_ESECTION, "section table", key, "offset and length are multiples of 8",
                        SP_PF_RECOMPILE, "tag %s offset %u length %u", tt, off, len);
        if ((uint64_t)off + len > data_end)
            return fail(c, SP_PROFILE_ESECTION, "section table", key,
                        "the section lies inside the file, before the CRC trailer", SP_PF_RECOMPILE,
                        "tag %s offset %u length %u (data ends at %" PRIu64 ")", tt, off, len, data_end);
        if (off < prev_end)
            return fail(c, SP_PROFILE_ESECTION, "section table", key,
                        "sections follow the table in order without overlapping", SP_PF_RECOMPILE,
                        "tag %s offset %u (previous data ends at %" PRIu64 ")", tt, off, prev_end);
        for (uint64_t p = prev_end; p < off; p++)
            if (c->b[p])
                return fail(c, SP_PROFILE_ERANGE, "padding", "byte", "padding between sections is zero", SP_PF_RECOMPILE,
                            "offset %" PRIu64 " = 0x%02x", p, c->b[p]);
        if (i < 3) {
            known[i].offset = off;
            known[i].length = len;
        }
        prev_end = (uint64_t)off + len;
    }
    for (uint64_t p = prev_end; p < data_end; p++)
        if (c->b[p])
            return fail(c, SP_PROFILE_ERANGE, "padding", "byte", "padding before the trailer is zero", SP_PF_RECOMPILE,
                        "offset %" PRIu64 " = 0x%02x", p, c->b[p]);
    return 0;
}


/* ---- entry points -------------------------------------------------------------------------- */

int sp_profile_parse(const void *data, size_t size, const char *name, sp_config *cfg, sp_host_facts *host,
                     sp_profile_info *info, char *msg, size_t msg_len) {
    sp_pf_ctx c = {.b = data, .size = size, .name = name ? name : "profile", .msg = msg, .len = msg_len};
    if (msg && msg_len) msg[0] = 0;
    if (size > SP_PF_MAX_SIZE)
        return fail(&c, SP_PROFILE_ELENGTH, "header", "total_length", "at most 1 MiB", "pass a compiled profile",
                    "%zu (file size)", size);
    sp_profile_info inf;
    sp_pf_section s[3];
    sp_config tmp_cfg;
    static __thread sp_host_facts tmp_host; /* 4.6 KB: not on the caller's stack, not allocated */
    int rc;
    memset(&inf, 0, sizeof inf);
    if ((rc = check_header(&c, &inf)) || (rc = check_crc(&c, &inf)) || (rc = check_sections(&c, s))) return rc;
    sp_config *oc = cfg ? cfg : &tmp_cfg;
    sp_host_facts *oh = host ? host : &tmp_host;
    memset(oc, 0, sizeof *oc);
    if ((rc = sp_pf_parse_engine(&c, s[0], oc)) || (rc = sp_pf_parse_lanes(&c, s[1], oc)) ||
        (rc = sp_pf_parse_host(&c, s[2], oh)) || (rc = sp_pf_cross_check(&c, oc, oh)))
        return rc;
    if (sp_config_validate) {
        char inner[SP_PROFILE_MSG_MAX];
        if (sp_config_validate(oc, 0, inner, sizeof inner) != 0) {
            if (msg && msg_len) snprintf(msg, msg_len, "%s: %s", c.name, inner);
            return SP_PROFILE_ERANGE;
        }
    }
    if (info) *info = inf;
    return 0;
}

struct sp_profile {
    void *map;
    size_t size;
    int mapped;
    sp_config cfg;
    sp_host_facts host;
    sp_profile_info info;
};

static sp_profile *finish(sp_profile *p, const char *name, int *err, char *msg, size_t msg_len) {
    int rc = sp_profile_parse(p->map, p->size, name, &p->cfg, &p->host, &p->info, msg, msg_len);
    if (err) *err = rc;
    if (rc) {
        sp_profile_close(p);
        return NULL;
    }
    return p;
}

sp_profile *sp_profile_open(const char *path, unsigned flags, int *err, char *msg, size_t msg_len) {
    sp_pf_ctx c = {.name = path, .msg = msg, .len = msg_len};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (err) *err = SP_PROFILE_EIO;
        fail(&c, SP_PROFILE_EIO, "file", "open", "the profile is readable by this process",
             "check the path and its permissions", "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = fail(&c, SP_PROFILE_EIO, "file", "fstat", "the file can be inspected", "check the file system", "%s",
                  strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fail(&c, SP_PROFILE_EIO, "file", "type", "a regular file", "pass the compiled .spindle file",
                  "mode 0%o", (unsigned)st.st_mode);
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(flags & SP_PROFILE_ALLOW_WRITABLE))
        /* As sshd's StrictModes: whoever may write the profile decides which CPUs we spin on. */
        rc = fail(&c, SP_PROFILE_EPERM, "file", "mode", "not writable by group or others",
                  "chmod go-w the file (or allow it explicitly)", "0%03o", (unsigned)(st.st_mode & 0777));
    else if (st.st_size > SP_PF_MAX_SIZE)
        /* Size before any field: an absurd file is refused without mapping it. */
        rc = fail(&c, SP_PROFILE_ELENGTH, "header", "total_length", "at most 1 MiB", "pass a compiled profile",
                  "%lld (file size)", (long long)st.st_size);
    else if (st.st_size < SP_PF_HEADER_LEN) {
        /* Too short to hold the header: read what there is and say which field is cut. */
        uint8_t head[SP_PF_HEADER_LEN] = {0};
        ssize_t got = pread(fd, head, (size_t)st.st_size, 0);
        rc = sp_profile_parse(head, got > 0 ? (size_t)got : 0, path, NULL, NULL, NULL, msg, msg_len);
        if (rc == 0) rc = SP_PROFILE_ETRUNCATED;
    }
    if (rc) {
        close(fd);
        if (err) *err = rc;
        return NULL;
    }
    /* The handle is the one allocation of a load: the bytes stay in the mapping and are validated
     * in place. Not zeroed (6 KB): sp_profile_parse writes every byte of cfg, host and info. */
    sp_profile *p = malloc(sizeof *p);
    if (!p) {
        close(fd);
        if (err) *err = SP_PROFILE_ENOMEM;
        return NULL;
    }
    p->size = (size_t)st.st_size;
    p->map = mmap(NULL, p->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p->map == MAP_FAILED) {
        if (err) *err = SP_PROFILE_EIO;
        fail(&c, SP_PROFILE_EIO, "file", "mmap", "the file can be mapped", "check the file system", "%s",
             strerror(errno));
        free(p);
        return NULL;
    }
    p->mapped = 1;
    return finish(p, path, err, msg, msg_len);
}

sp_profile *sp_profile_from_memory(const void *data, size_t size, const char *name, int *err, char *msg,
                                   size_t msg_len) {
    sp_profile *p = calloc(1, sizeof *p);
    if (!p || !(p->map = malloc(size ? size : 1))) {
        free(p);
        if (err) *err = SP_PROFILE_ENOMEM;
        return NULL;
    }
    if (size) memcpy(p->map, data, size);
    p->size = size;
    return finish(p, name ? name : "profile", err, msg, msg_len);
}

void sp_profile_close(sp_profile *p) {
    if (!p) return;
    if (p->mapped)
        munmap(p->map, p->size);
    else
        free(p->map);
    free(p);
}

const sp_config *sp_profile_config(const sp_profile *p) { return &p->cfg; }
const sp_host_facts *sp_profile_host(const sp_profile *p) { return &p->host; }
const sp_profile_info *sp_profile_get_info(const sp_profile *p) { return &p->info; }
