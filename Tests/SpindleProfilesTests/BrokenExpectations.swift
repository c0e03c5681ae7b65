/// The exact one-line refusal of each case in ``BrokenCases`` (file, section, key, value, rule, fix).
enum BrokenExpectations {
    static let messages: [String: String] = [
        "truncated in empty":
            "t.spindle: header magic = (missing; file is 0 bytes): rule the header needs 8 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in magic":
            "t.spindle: header magic = (missing; file is 5 bytes): rule the header needs 8 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in version_major":
            "t.spindle: header version_major = (missing; file is 9 bytes): rule the header needs 10 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in version_minor":
            "t.spindle: header version_minor = (missing; file is 11 bytes): rule the header needs 12 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in header_length":
            "t.spindle: header header_length = (missing; file is 14 bytes): rule the header needs 16 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in total_length":
            "t.spindle: header total_length = (missing; file is 20 bytes): rule the header needs 24 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in incompat":
            "t.spindle: header incompat = (missing; file is 30 bytes): rule the header needs 32 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in ro_compat":
            "t.spindle: header ro_compat = (missing; file is 36 bytes): rule the header needs 40 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in compat":
            "t.spindle: header compat = (missing; file is 44 bytes): rule the header needs 48 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in section_count":
            "t.spindle: header section_count = (missing; file is 50 bytes): rule the header needs 52 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in reserved":
            "t.spindle: header reserved = (missing; file is 60 bytes): rule the header needs 64 bytes up to this field; fix: the file is cut short: recompile it with `spindle profile compile`",
        "truncated in a section":
            "t.spindle: header total_length = 1312 (file is 1248 bytes): rule equals the file size; fix: the file is cut short: recompile it with `spindle profile compile`",
        "bad magic":
            "t.spindle: header magic = 0x58504e444c505246: rule the file starts with \"SPNDLPRF\"; fix: pass a compiled profile (spindle profile compile IN.toml -o OUT.spindle)",
        "major version 2":
            "t.spindle: header version_major = 2: rule this loader reads major version 1; fix: use a spindle that reads this version, or recompile with this one",
        "header length 32":
            "t.spindle: header header_length = 32: rule 64 in v1.0, a multiple of 8 and at least 64 in later minors; fix: recompile it with `spindle profile compile`",
        "header length 72 in v1.0":
            "t.spindle: header header_length = 72: rule 64 in v1.0, a multiple of 8 and at least 64 in later minors; fix: recompile it with `spindle profile compile`",
        "trailing bytes":
            "t.spindle: header total_length = 1312 (file is 1320 bytes): rule equals the file size; fix: the file has trailing bytes: recompile it with `spindle profile compile`",
        "unknown incompat bit":
            "t.spindle: header incompat = 0x0000000000000020 (unknown bits 0x20): rule every incompatible feature bit is known to this loader; fix: use a spindle that knows these features, or recompile the profile with this one",
        "section count 2":
            "t.spindle: header section_count = 2: rule 3...16 (ENGINE, LANES, HOST, then newer ones); fix: recompile it with `spindle profile compile`",
        "section count 17":
            "t.spindle: header section_count = 17: rule 3...16 (ENGINE, LANES, HOST, then newer ones); fix: recompile it with `spindle profile compile`",
        "reserved header bytes":
            "t.spindle: header reserved = 0x000000000000000000000001: rule zero; fix: recompile it with `spindle profile compile`",
        "bad CRC":
            "t.spindle: trailer crc32c = 0x8739c80a (computed 0x1363d1cb): rule CRC32C of every byte before the trailer; fix: the file is damaged or was edited by hand: recompile it with `spindle profile compile`",
        "trailer reserved":
            "t.spindle: trailer reserved = 0x07000000: rule zero; fix: recompile it with `spindle profile compile`",
        "sections out of order":
            "t.spindle: section table sections[0] = tag \"LANE\" (expected \"ENGN\"): rule ENGINE, LANES, HOST come first, in this order; fix: recompile it with `spindle profile compile`",
        "section flags":
            "t.spindle: section table sections[1] = flags 0x1: rule flags are zero; fix: recompile it with `spindle profile compile`",
        "section offset unaligned":
            "t.spindle: section table sections[1] = tag \"LANE\" offset 676 length 200: rule offset and length are multiples of 8; fix: recompile it with `spindle profile compile`",
        "section out of bounds":
            "t.spindle: section table sections[2] = tag \"HOST\" offset 872 length 1048576 (data ends at 1304): rule the section lies inside the file, before the CRC trailer; fix: recompile it with `spindle profile compile`",
        "sections overlap":
            "t.spindle: section table sections[1] = tag \"LANE\" offset 664 (previous data ends at 672): rule sections follow the table in order without overlapping; fix: recompile it with `spindle profile compile`",
        "section table runs into the sections":
            "t.spindle: section table sections[0] = tag \"ENGN\" offset 112 (previous data ends at 320): rule sections follow the table in order without overlapping; fix: recompile it with `spindle profile compile`",
        "worker count 0":
            "t.spindle: ENGINE engine.worker_count = 0: rule 1...256 workers; fix: list between 1 and 256 CPUs in engine.cpus",
        "worker count disagrees with the CPU bitmap":
            "t.spindle: ENGINE engine.worker_count = 3 (engine.cpus has 2 CPUs): rule equals the number of CPUs in engine.cpus; fix: recompile it with `spindle profile compile`",
        "numa policy 3":
            "t.spindle: ENGINE engine.numa_policy = 3: rule 0 (local), 1 (interleave) or 2 (none); fix: use numa_policy = \"local\"",
        "spin over 1 s":
            "t.spindle: ENGINE engine.spin_us = 2000000: rule 0...1000000 (at most 1 s); fix: use the spin time `detect --measure` derives, e.g. 50",
        "spin not whole microseconds":
            "t.spindle: ENGINE engine.spin_us = 50500 ns: rule whole microseconds; fix: recompile it with `spindle profile compile`",
        "uring entries not a power of two":
            "t.spindle: ENGINE engine.uring_entries = 100: rule a power of two in 8...32768; fix: use 256",
        "uring entries too many":
            "t.spindle: ENGINE engine.uring_entries = 65536: rule a power of two in 8...32768; fix: use 256",
        "uring flags unknown bit":
            "t.spindle: ENGINE engine.uring_flags = 0x4: rule only bits 0x1 (defer_taskrun) and 0x2 (coop_taskrun); fix: recompile it with `spindle profile compile`",
        "backend 3":
            "t.spindle: ENGINE engine.backend = 3: rule 0 (auto), 1 (io_uring) or 2 (epoll); fix: use backend = \"auto\"",
        "eager ring bytes over 1 TiB":
            "t.spindle: ENGINE engine.eager_ring_bytes = 2199023255552: rule 0...1099511627776 (1 TiB); fix: use 67108864 (64 MiB)",
        "slow batch over 60 s":
            "t.spindle: ENGINE engine.slow_batch_us = 61000000: rule 0 (off) or 1...60000000 (60 s); fix: use 10000 (10 ms)",
        "CPU not on the recorded host":
            "t.spindle: ENGINE engine.cpus = CPU 2: rule every CPU exists on the host described in [host]; fix: remove it from engine.cpus or re-run detect on the target host",
        "lane count 0":
            "t.spindle: LANES lanes = 0 lanes: rule 1...8 lanes; fix: define between 1 and 8 [[lanes]]",
        "lane count 9":
            "t.spindle: LANES lanes = 9 lanes: rule 1...8 lanes; fix: define between 1 and 8 [[lanes]]",
        "lane record size 72 in v1.0":
            "t.spindle: LANES record_size = 72: rule 64 in v1.0; fix: recompile it with `spindle profile compile`",
        "lane name empty":
            "t.spindle: LANES lanes[0].name = \"\": rule 1...31 bytes, NUL-terminated; fix: give the lane a short name",
        "lane name with a space":
            "t.spindle: LANES lanes[0].name = byte 2 = 0x20: rule letters, digits, '_' and '-' only; fix: rename the lane",
        "lane name not terminated":
            "t.spindle: LANES lanes[0].name = (not terminated): rule 1...31 bytes, NUL-terminated; fix: give the lane a short name",
        "lane name bytes after the NUL":
            "t.spindle: LANES lanes[0].name = byte 30 = 0x61: rule zero bytes after the NUL; fix: recompile it with `spindle profile compile`",
        "duplicate lane names":
            "t.spindle: LANES lanes.normal.name = \"normal\" (also lanes[1]): rule lane names are unique; fix: rename one of the lanes",
        "lane policy 2":
            "t.spindle: LANES lanes.normal.policy = 2: rule 0 (strict) or 1 (weighted); fix: use policy = \"weighted\"",
        "strict budget 0":
            "t.spindle: LANES lanes.critical.budget = 0: rule 1...65536 events per round; fix: use budget = 64",
        "strict budget over 65536":
            "t.spindle: LANES lanes.critical.budget = 70000: rule 1...65536 events per round; fix: use budget = 64",
        "strict lane with a weight":
            "t.spindle: LANES lanes.critical.weight = 3: rule a strict lane has no weight; fix: remove weight or set policy = \"weighted\"",
        "weight 0":
            "t.spindle: LANES lanes.normal.weight = 0: rule 1...1024; fix: use weight = 1 or more",
        "weight over 1024":
            "t.spindle: LANES lanes.normal.weight = 2000: rule 1...1024; fix: use weight = 1 or more",
        "weighted lane with a budget":
            "t.spindle: LANES lanes.normal.budget = 9: rule a weighted lane has no budget; fix: remove budget or set policy = \"strict\"",
        "strict lane after a weighted lane":
            "t.spindle: LANES lanes.bulk.policy = strict (after weighted lanes[1]): rule strict lanes come before weighted lanes (lane 0 is highest); fix: move this lane above the weighted ones",
        "capacity not a power of two":
            "t.spindle: LANES lanes.critical.capacity = 100: rule a power of two in 64...4194304; fix: use capacity = 4096",
        "capacity below 64":
            "t.spindle: LANES lanes.critical.capacity = 32: rule a power of two in 64...4194304; fix: use capacity = 4096",
        "on_full 3":
            "t.spindle: LANES lanes.critical.on_full = 3: rule 0 (reject), 1 (drop) or 2 (block); fix: use on_full = \"reject\"",
        "max batch 0":
            "t.spindle: LANES lanes.critical.max_batch = 0: rule 1...1024; fix: use max_batch = 32",
        "max batch over 1024":
            "t.spindle: LANES lanes.critical.max_batch = 2000: rule 1...1024; fix: use max_batch = 32",
        "max batch over capacity":
            "t.spindle: LANES lanes.critical.max_batch = 128 (capacity 64): rule at most the lane's capacity; fix: lower max_batch or raise capacity",
        "block timeout on a reject lane":
            "t.spindle: LANES lanes.critical.block_timeout_us = 5: rule only a block lane has a timeout; fix: remove block_timeout_us or set on_full = \"block\"",
        "block timeout over an hour":
            "t.spindle: LANES lanes.bulk.block_timeout_us = 4000000000: rule 0 (until shutdown) or 1...3600000000 (1 h); fix: use a shorter timeout",
        "cpu span over 4096":
            "t.spindle: HOST host.cpu_span = 5000: rule 0...4096; fix: re-run `spindle profile detect`",
        "numa nodes 17":
            "t.spindle: HOST host.numa_nodes = 17: rule 0...16 nodes; fix: re-run `spindle profile detect`",
        "distance diagonal 11":
            "t.spindle: HOST host.numa_distances[0][0] = 11: rule 10 on the diagonal, 11...254 between nodes, 0 beyond numa_nodes; fix: copy the distances from /sys/devices/system/node/node*/distance",
        "cpu model not printable":
            "t.spindle: HOST host.cpu_model = byte 0 = 0x07: rule printable ASCII; fix: re-run `spindle profile detect`",
        "fingerprint mismatch":
            "t.spindle: HOST host.fingerprint = 0xec5f4989f3e8febd (computed 0xec5f4989f3e8fe42): rule the FNV-1a hash of cpu_model, kernel and NUMA layout; fix: recompile it with `spindle profile compile`",
        "CPU on a node that does not exist":
            "t.spindle: HOST host.numa_node_cpus = CPU 0 on node 3 (1 nodes): rule each CPU's node is below numa_nodes; fix: re-run `spindle profile detect`",
        "unknown engine key":
            "t.toml: [engine] engine.spn_us = 50: rule a documented key of [engine]; fix: did you mean `spin_us`?",
        "unknown top-level table":
            "t.toml: (top level) hosts = (a table): rule a documented key of (top level); fix: did you mean `host`?",
        "unknown lane key":
            "t.toml: [[lanes]] lanes.normal.wieght = 4: rule a documented key of [[lanes]]; fix: did you mean `weight`?",
        "unknown key in a lane with an invalid name":
            "t.toml: [[lanes]] lanes[1].wieght = 4: rule a documented key of [[lanes]]; fix: did you mean `weight`?",
        "unknown key in a lane without a name":
            "t.toml: [[lanes]] lanes[1].wieght = 4: rule a documented key of [[lanes]]; fix: did you mean `weight`?",
        "spin as a string":
            "t.toml: [engine] engine.spin_us = \"fast\": rule an integer, not string; fix: write spin_us = 50",
        "cpus as a string":
            "t.toml: [engine] engine.cpus = \"0-1\": rule an array, not string; fix: write cpus = [0, 1]",
        "weight as a float":
            "t.toml: [[lanes]] lanes.normal.weight = 4.5: rule an integer, not floating-point number; fix: write weight = 1",
        "on_full misspelled":
            "t.toml: [[lanes]] lanes.bulk.on_full = \"blok\": rule one of \"reject\", \"drop\", \"block\"; fix: did you mean \"block\"?",
        "cpus not ascending":
            "t.toml: [engine] engine.cpus = [1, 0]: rule ascending, distinct CPU numbers (worker i runs on the i-th); fix: write cpus = [0, 1]",
        "negative spin":
            "t.toml: [engine] engine.spin_us = -5: rule a non-negative integer; fix: write spin_us = 50",
        "strict lane without a budget":
            "t.toml: [[lanes]] lanes.critical.budget = (missing): rule a strict lane has a budget (events per round); fix: add budget = 64",
        "weight out of range (from the loader)":
            "t.toml: LANES lanes.normal.weight = 0: rule 1...1024; fix: use weight = 1 or more",
        "capacity out of range (from the loader)":
            "t.toml: LANES lanes.normal.capacity = 1000: rule a power of two in 64...4194304; fix: use capacity = 4096",
        "lane name too long":
            "t.toml: [[lanes]] lanes[0].name = \"critical-lane-with-a-very-long-name\": rule 1...31 letters, digits, '_' or '-'; fix: give the lane a short name like \"bulk\"",
        "unknown io_uring feature":
            "t.toml: [host] host.uring_features[0] = \"msgring\": rule one of single_issuer, defer_taskrun, coop_taskrun, msg_ring; fix: did you mean \"msg_ring\"?",
        "table header starting with a non-ASCII character":
            "t.toml: line 3, column 2: a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw U+00E9; fix: correct the TOML syntax",
        "table header starting with bytes that are not UTF-8":
            "t.toml: line 1, column 2: a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw U+FFFD; fix: correct the TOML syntax",
        "table header after a byte-order mark":
            "t.toml: line 1, column 2: a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw U+00C8; fix: correct the TOML syntax",
        "array-of-tables header starting with a control character":
            "t.toml: line 1, column 4: a table header must start with a key (A-Z a-z 0-9 _ - or a quoted name), saw U+0001; fix: correct the TOML syntax",
        "unknown key holding an array of tables (quoted on one line)":
            "t.toml: (top level) alnes = [{ name = \"a\" }, { name = \"b\" }]: rule a documented key of (top level); fix: did you mean `lanes`?",
        "a bracket inside a multi-line string is not a header":  // parsed on: refused later, for its missing lanes
            "t.toml: (top level) lanes = (missing): rule at least one [[lanes]] table; fix: add lanes = [{ name = \"normal\", policy = \"weighted\", weight = 1 }]",
        "TOML syntax error":
            "t.toml: line 1, column 8: expected ']' to close the table header, saw the end of the line; fix: correct the TOML syntax",
        "no lanes":
            "t.toml: (top level) lanes = (missing): rule at least one [[lanes]] table; fix: add lanes = [{ name = \"normal\", policy = \"weighted\", weight = 1 }]",
        "no engine":
            "t.toml: (top level) engine = (missing): rule a profile has an [engine] table; fix: add engine = { cpus = [0, 1] }",
    ]
}
